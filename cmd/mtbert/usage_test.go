package main

import (
	"bytes"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestUsageListsEveryFlag runs every command with -h and checks that its usage line names
// each flag the command registers (the flags PrintDefaults lists below it): `train -h` and
// `data -h` used to omit flags they accept. The flags named by hand come first.
func TestUsageListsEveryFlag(t *testing.T) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	// bench dispatches to sub-commands, each with its own flags.
	for _, sub := range []string{"gemm", "bert", "mt", "mlm", "serve"} {
		names = append(names, "bench "+sub)
	}
	flagLine := regexp.MustCompile(`(?m)^  -([A-Za-z0-9-]+)`)
	for _, name := range names {
		var stdout, stderr bytes.Buffer
		if code := run(append(strings.Fields(name), "-h"), &stdout, &stderr); code != 0 {
			t.Errorf("%s -h: exit %d", name, code)
			continue
		}
		out := stderr.String()
		synopsis, rest, _ := strings.Cut(out, "\n")
		if !strings.HasPrefix(synopsis, "Usage: mtbert "+name) {
			t.Errorf("%s -h: first line %q", name, synopsis)
			continue
		}
		flags := flagLine.FindAllStringSubmatch(rest, -1)
		if len(flags) == 0 && name != "bench" {
			t.Errorf("%s -h lists no flags:\n%s", name, out)
		}
		for _, f := range flags {
			if !namesFlag(synopsis, f[1]) {
				t.Errorf("%s: usage line lacks -%s: %s", name, f[1], synopsis)
			}
		}
	}
}
