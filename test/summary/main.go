// Command summary turns `go test -json` on stdin into progress a person can
// follow: a line per package as it finishes, a line per top-level test (with
// its time) for the packages named by -tests, the output of every failed
// test, and a closing "N passed, N failed, N skipped". It exits 1 when a
// test or a package failed.
//
//	go test -json ./... | go run ./test/summary [-tests REGEXP] [-counts FILE]
//	go run ./test/summary -total FILE
//
// -counts appends the run's counts to FILE; -total prints the sum of all
// counts in FILE, so several runs close with one line.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
)

type event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

type counts struct{ passed, failed, skipped int }

func (c counts) String() string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", c.passed, c.failed, c.skipped)
}

func main() {
	tests := flag.String("tests", "", "print each top-level test of packages matching `REGEXP` as it ends")
	countsFile := flag.String("counts", "", "append this run's counts to `FILE`")
	total := flag.String("total", "", "print the sum of the counts in `FILE` and exit")
	flag.Parse()
	if *total != "" {
		os.Exit(printTotal(*total))
	}
	named := regexp.MustCompile("^$")
	if *tests != "" {
		named = regexp.MustCompile(*tests)
	}
	c, bad := summarize(os.Stdin, os.Stdout, named)
	fmt.Println(c)
	if *countsFile != "" {
		f, err := os.OpenFile(*countsFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err == nil {
			fmt.Fprintf(f, "%d %d %d\n", c.passed, c.failed, c.skipped)
			err = f.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "summary:", err)
			os.Exit(1)
		}
	}
	if bad {
		os.Exit(1)
	}
}

// summarize reads events from r and writes progress to w. It reports the
// counts and whether anything failed (a test, a package, or a build).
func summarize(r io.Reader, w io.Writer, named *regexp.Regexp) (counts, bool) {
	var c counts
	bad := false
	output := map[string]*strings.Builder{} // package + test -> its output
	pkgTests := map[string]*counts{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(w, "%s\n", line) // not an event: build errors and the like
			continue
		}
		key := e.Package + " " + e.Test
		pc := pkgTests[e.Package]
		if pc == nil {
			pc = &counts{}
			pkgTests[e.Package] = pc
		}
		switch e.Action {
		case "output", "build-output":
			if e.Action == "build-output" {
				fmt.Fprint(w, e.Output)
			}
			b := output[key]
			if b == nil {
				b = &strings.Builder{}
				output[key] = b
			}
			b.WriteString(e.Output)
		case "pass", "fail", "skip":
			if e.Test == "" {
				bad = finishPackage(w, e, pc, output[key]) || bad
				continue
			}
			switch e.Action {
			case "pass":
				c.passed++
				pc.passed++
			case "fail":
				c.failed++
				pc.failed++
				bad = true
				fmt.Fprintf(w, "--- FAIL %s %s (%s)\n", short(e.Package), e.Test, dur(e.Elapsed))
				printOutput(w, output, e.Package, e.Test)
			case "skip":
				c.skipped++
				pc.skipped++
			}
			if e.Action != "fail" && !strings.Contains(e.Test, "/") && named.MatchString(e.Package) {
				fmt.Fprintf(w, "    %s %s (%s)\n", strings.ToUpper(e.Action), e.Test, dur(e.Elapsed))
			}
			if !strings.Contains(e.Test, "/") {
				for k := range output {
					if strings.HasPrefix(k, key) {
						delete(output, k)
					}
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(w, "summary: reading go test output:", err)
		bad = true
	}
	return c, bad
}

// finishPackage prints a package's closing line and reports a failure.
func finishPackage(w io.Writer, e event, pc *counts, out *strings.Builder) bool {
	switch e.Action {
	case "pass":
		fmt.Fprintf(w, "ok   %-32s %7s  (%d passed, %d skipped)\n", e.Package, dur(e.Elapsed), pc.passed, pc.skipped)
		return false
	case "skip":
		fmt.Fprintf(w, "?    %-32s [no test files]\n", e.Package)
		return false
	}
	fmt.Fprintf(w, "FAIL %-32s %7s  (%d passed, %d failed, %d skipped)\n", e.Package, dur(e.Elapsed), pc.passed, pc.failed, pc.skipped)
	if out != nil && pc.failed == 0 {
		// A package that failed outside any test (TestMain, a panic, a
		// timeout, a build error): its own output says why.
		fmt.Fprint(w, out.String())
	}
	return true
}

// printOutput prints a failed test's output, its subtests' included.
func printOutput(w io.Writer, output map[string]*strings.Builder, pkg, test string) {
	prefix := pkg + " " + test
	var keys []string
	for k := range output {
		if k == prefix || strings.HasPrefix(k, prefix+"/") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, l := range strings.SplitAfter(output[k].String(), "\n") {
			if l != "" {
				fmt.Fprint(w, "    ", l)
			}
		}
	}
}

func printTotal(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "summary:", err)
		return 1
	}
	var c counts
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var p, f, s int
		if _, err := fmt.Sscan(l, &p, &f, &s); err != nil {
			fmt.Fprintf(os.Stderr, "summary: %s: bad line %q\n", path, l)
			return 1
		}
		c.passed, c.failed, c.skipped = c.passed+p, c.failed+f, c.skipped+s
	}
	fmt.Println(c)
	if c.failed > 0 {
		return 1
	}
	return 0
}

func short(pkg string) string { return pkg[strings.LastIndex(pkg, "/")+1:] }

func dur(sec float64) string {
	return (time.Duration(sec*1000) * time.Millisecond).String()
}
