// Package e2e holds Pruuv's end-to-end tests of conversion sending: events
// posted to the Webhook API, sent by `pruuv conversions send` or by the loop
// of `pruuv serve` child processes through the real platform clients to the
// platforms' strict fakes, and checked through `pruuv conversions log` and
// `attempts`. It has no code of its own; docs/conversions.md describes what
// the tests cover.
package e2e
