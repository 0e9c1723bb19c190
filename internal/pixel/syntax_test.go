package pixel

import (
	"regexp"
	"testing"
)

// TestScriptIsES2017 keeps pixel.js to what every current Chromium, Firefox
// and Safari runs, and older ones too: plain ES2017 or lower. It looks for the
// syntax and built-ins of later editions in the source without its comments
// and string literals, so a word in a comment or a message cannot trip it.
func TestScriptIsES2017(t *testing.T) {
	later := []struct{ what, re string }{
		{"optional chaining (ES2020)", `\?\.[^0-9]`},
		{"nullish coalescing (ES2020)", `\?\?`},
		{"object spread or rest (ES2018)", `\{\s*\.\.\.|,\s*\.\.\.\w+\s*\}`},
		{"optional catch binding (ES2019)", `catch\s*\{`},
		{"private class members (ES2022)", `#[A-Za-z_]`},
		{"class fields or static blocks (ES2022)", `\bstatic\s*\{`},
		{"logical assignment (ES2021)", `(\|\||&&|\?\?)=`},
		{"numeric separators (ES2021)", `\d_\d`},
		{"BigInt literals (ES2020)", `\b\d+n\b`},
		{"regex lookbehind or named groups (ES2018)", `\(\?<`},
		{"for await (ES2018)", `for\s+await`},
		{"ES2019+ built-ins", `\.(flat|flatMap|fromEntries|trimStart|trimEnd|matchAll|replaceAll|allSettled|any|at|findLast|findLastIndex|hasOwn|toSorted|toReversed|withResolvers)\(`},
		{"ES2020+ globals", `\b(globalThis|BigInt|structuredClone|WeakRef|FinalizationRegistry|AggregateError)\b`},
		{"modules", `\b(import|export)\b`},
	}
	code := stripJS(string(script))
	if len(code) < len(script)/2 {
		t.Fatalf("stripping comments and strings left %d of %d bytes: the stripper is wrong", len(code), len(script))
	}
	for _, l := range later {
		if m := regexp.MustCompile(l.re).FindStringIndex(code); m != nil {
			t.Errorf("pixel.js uses %s: %q", l.what, code[max(m[0]-30, 0):min(m[1]+30, len(code))])
		}
	}
}

// stripJS blanks comments and the contents of string literals. Regular
// expression literals are left as they are: the patterns above do not match
// inside the script's own.
func stripJS(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '/' && i+1 < len(s) && s[i+1] == '/':
			for i < len(s) && s[i] != '\n' {
				i++
			}
			out = append(out, '\n')
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			i += 2
			for i+1 < len(s) && !(s[i] == '*' && s[i+1] == '/') {
				i++
			}
			i++
			out = append(out, ' ')
		case c == '\'' || c == '"' || c == '`':
			out = append(out, c, c)
			for i++; i < len(s) && s[i] != c; i++ {
				if s[i] == '\\' {
					i++
				}
			}
		default:
			out = append(out, c)
		}
	}
	return string(out)
}

func TestStripJS(t *testing.T) {
	in := "var a = 'x?.y ?? z'; // b ?? c\n/* d?.e */ f(\"g\\\"?.h\");"
	if got, want := stripJS(in), "var a = ''; \n  f(\"\");"; got != want {
		t.Errorf("stripJS = %q, want %q", got, want)
	}
}
