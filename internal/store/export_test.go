package store

import "context"

// ExecForTest runs a statement on the writer; tests use it to set up states
// the API cannot reach, such as a schema from the future. It exists only in
// test builds.
func (s *Store) ExecForTest(ctx context.Context, query string) error {
	_, err := s.w.ExecContext(ctx, query)
	return err
}
