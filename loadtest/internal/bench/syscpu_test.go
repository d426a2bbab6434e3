package bench

import (
	"os"
	"testing"
)

func TestStatSeconds(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       float64
		wantErr    bool
	}{
		// utime 150, stime 50, cutime 20, cstime 30 ticks = 2.5 s
		{"plain", "1234 (mariadbd) S 1 1234 1234 0 -1 4194560 100 0 0 0 150 50 20 30 20 0 40 0 100 1000 10", 2.5, false},
		{"spaces and parentheses in the name", "77 (java (kafka) x) R 1 77 77 0 -1 0 0 0 0 0 100 0 0 0 20 0", 1, false},
		{"no name", "1234 S 1", 0, true},
		{"truncated", "1 (x) S 1 2 3", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := statSeconds(tc.stat)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("statSeconds = %v, %v; want %v (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestPartOf(t *testing.T) {
	for _, tc := range []struct{ cmdline, want string }{
		{"/usr/sbin/mariadbd --no-defaults --port=3307 ", PartMariaDB},
		{"java -Xmx1g -cp /x/* kafka.Kafka /x/server.properties ", PartKafka},
		{"java -cp /s/mongo/libs/* dev.orderflow.mongo.MongoWireServer 127.0.0.1 27017 ", PartReadStore},
		{"/work/.state/bin/order-command ", PartCommand},
		{"/tmp/go-build1/b001/exe/dayrun -rate 850 ", PartLoadGenerator},
		{"/usr/bin/bash ", ""},
	} {
		if got := partOf(2, 1, tc.cmdline); got != tc.want {
			t.Errorf("partOf(%q) = %q, want %q", tc.cmdline, got, tc.want)
		}
	}
	if got := partOf(1, 1, "/usr/bin/anything "); got != PartLoadGenerator {
		t.Errorf("the benchmark itself is %q, want the load generator", got)
	}
}

func TestCPUBetween(t *testing.T) {
	before := CPUSnapshot{10: {PartMariaDB, 5}, 11: {PartMariaDB, 1}, 12: {PartCommand, 3}, 13: {PartKafka, 9}}
	after := CPUSnapshot{
		10: {PartMariaDB, 7},   // +2
		11: {PartMariaDB, 2},   // +1
		12: {PartRelay, 0.5},   // pid reused by another part: counts from zero
		14: {PartProjector, 4}, // started in between
		// 13 ended in between: not counted
	}
	u := CPUBetween(before, after, 1000, 10)
	want := map[string]float64{PartMariaDB: 3, PartRelay: 0.5, PartProjector: 4}
	if len(u.Seconds) != len(want) {
		t.Fatalf("parts %v, want %v", u.Seconds, want)
	}
	for p, s := range want {
		if u.Seconds[p] != s {
			t.Errorf("%s: %v s, want %v", p, u.Seconds[p], s)
		}
	}
	if u.TotalSeconds != 7.5 || u.MsPerOrder("") != 7.5 || u.MsPerOrder(PartMariaDB) != 3 {
		t.Errorf("total %v s, %v ms/order, mariadb %v ms/order", u.TotalSeconds, u.MsPerOrder(""), u.MsPerOrder(PartMariaDB))
	}
	if got := u.Parts(); got[0] != PartProjector || got[1] != PartMariaDB || got[2] != PartRelay {
		t.Errorf("parts in order %v", got)
	}
}

func TestSnapshotCPUSeesItself(t *testing.T) {
	snap, err := SnapshotCPU()
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := snap[os.Getpid()]; !ok || p.Part != PartLoadGenerator {
		t.Fatalf("the test process is %+v in the snapshot, want the load generator", p)
	}
}
