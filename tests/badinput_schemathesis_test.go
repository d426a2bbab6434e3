package tests

import (
	"context"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/shared/testinfra"
)

// junitReport is the part of Schemathesis's JUnit report the test reads:
// one test case per API operation.
type junitReport struct {
	Suites []struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Errors   int `xml:"errors,attr"`
		Cases    []struct {
			Name    string `xml:"name,attr"`
			Failure []struct {
				Text string `xml:",chardata"`
			} `xml:"failure"`
			Error []struct {
				Text string `xml:",chardata"`
			} `xml:"error"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// One worker: Schemathesis's data generation describes strategies with
// ast.parse, which on CPython 3.11 before 3.11.8 can fail with "AST
// constructor recursion depth mismatch" when threads parse at once.

// schemathesisExamples bounds the test cases per operation and phase, so
// both services take well under two minutes together on this machine;
// ORDERFLOW_SCHEMATHESIS_EXAMPLES raises it for a longer run (make fuzz).
const schemathesisExamples = 40

// schemathesisBudget is how many examples per operation and phase this run
// asks for, and how long one API's run may take with them.
func schemathesisBudget(t *testing.T) (int, time.Duration) {
	n := schemathesisExamples
	if v := os.Getenv("ORDERFLOW_SCHEMATHESIS_EXAMPLES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("ORDERFLOW_SCHEMATHESIS_EXAMPLES=%q: want a positive number", v)
		}
	}
	return n, time.Duration(max(1, n/schemathesisExamples)) * 2 * time.Minute
}

// TestSchemathesisFindsNoFailure runs Schemathesis (an outside API fuzzer;
// scripts/schemathesis installs the pinned version once) against the
// OpenAPI document each of order-command, order-query and the relay's admin
// API publishes, with valid and invalid requests an operator sends: no request may get a 5xx,
// a status the document does not declare, or a response that does not
// match its schema.
func TestSchemathesisFindsNoFailure(t *testing.T) {
	testinfra.Integration(t)
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	install := exec.Command(filepath.Join(root, "scripts", "schemathesis"), "path")
	out, err := install.Output()
	if err != nil {
		t.Fatalf("installing schemathesis: %v\n%s", err, exitStderr(err))
	}
	st := string(trimNewline(out))
	sys := startInputSystem(t)
	relayHTTP, _ := sys.startAdminRelay(t)

	services := []struct {
		name, http, token string
		operations        int
		// placesOrders: the document lets a generated client place an
		// order, so the run reaches the business logic, not only the
		// validation.
		placesOrders bool
		// listsOutboxRows: the admin API's responses carry rows (the
		// orders placed before), so their nullable timestamps are checked
		// against the schema, not only empty lists.
		listsOutboxRows bool
	}{
		{name: "order-command", http: sys.command, token: sys.operatorToken, operations: 4, placesOrders: true},
		{name: "order-query", http: sys.query, token: sys.operatorToken, operations: 3},
		{name: "outbox-relay admin", http: relayHTTP, token: badInputAdminToken, operations: 4, listsOutboxRows: true},
	}
	for _, svc := range services {
		t.Run(svc.name, func(t *testing.T) {
			if svc.listsOutboxRows {
				rows := int64(0)
				for name, n := range sys.counts(t) {
					if strings.HasSuffix(name, ".outbox") {
						rows += n
					}
				}
				if rows == 0 {
					t.Fatal("no outbox rows for the admin API to list: the order-command run placed no order")
				}
			}
			reports := t.TempDir()
			examples, budget := schemathesisBudget(t)
			ctx, cancel := context.WithTimeout(t.Context(), budget)
			defer cancel()
			base := "http://" + svc.http
			cmd := exec.CommandContext(ctx, st, "run", base+"/openapi.json", "--url", base,
				"--checks", "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance",
				"--header", "Authorization: Bearer "+svc.token,
				"--max-examples", strconv.Itoa(examples), "--seed", "1", "--workers", "1",
				"--request-timeout", "10", "--phases", "examples,coverage,fuzzing",
				"--report", "junit", "--report-junit-path", filepath.Join(reports, "junit.xml"),
				"--no-color")
			cmd.Env = append(os.Environ(), "NO_COLOR=1")
			// Schemathesis keeps a cache of what it found in the working
			// directory: the test's own, never the repository.
			cmd.Dir = reports
			started := time.Now()
			output, runErr := cmd.CombinedOutput()
			t.Logf("schemathesis against %s took %s", svc.name, time.Since(started).Round(time.Second))
			if ctx.Err() != nil {
				t.Fatalf("schemathesis did not finish within 2 minutes:\n%s", tailBytes(output, 4000))
			}
			raw, err := os.ReadFile(filepath.Join(reports, "junit.xml"))
			if err != nil {
				t.Fatalf("no JUnit report (%v); schemathesis: %v\n%s", err, runErr, tailBytes(output, 4000))
			}
			var rep junitReport
			if err := xml.Unmarshal(raw, &rep); err != nil {
				t.Fatalf("reading the JUnit report: %v", err)
			}
			cases := 0
			for _, s := range rep.Suites {
				for _, c := range s.Cases {
					cases++
					for _, f := range append(c.Failure, c.Error...) {
						t.Errorf("%s: %s", c.Name, tailBytes([]byte(f.Text), 2000))
					}
				}
			}
			// Every operation of the document was tested: a document the
			// tool could not read, or a filter, would test none and pass.
			if cases != svc.operations {
				t.Errorf("schemathesis tested %d operations, want %d:\n%s", cases, svc.operations, tailBytes(output, 4000))
			}
			if svc.placesOrders {
				placed := int64(0)
				for name, n := range sys.counts(t) {
					if strings.HasSuffix(name, ".orders") && !strings.HasPrefix(name, "readstore.") {
						placed += n
					}
				}
				t.Logf("orders placed by schemathesis: %d", placed)
				if placed == 0 {
					t.Errorf("schemathesis placed no order: the document does not describe a request the server takes")
				}
			}
			if runErr != nil && !t.Failed() {
				t.Errorf("schemathesis: %v\n%s", runErr, tailBytes(output, 4000))
			}
		})
	}
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func exitStderr(err error) []byte {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.Stderr
	}
	return nil
}
