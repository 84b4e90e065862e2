package main

// The backfill's cost: the OpenMetrics file a member of n workouts gives, how long writing it
// takes, and the TSDB blocks promtool makes of it (when promtool is installed).

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// backfillSizes are the members measured; 2,000 workouts is the target's.
var backfillSizes = []int{500, 2000, 10000}

// Targets for a member of 2,000 workouts (issue 13).
const (
	maxBackfillWrite  = 10 * time.Second
	maxBackfillBytes  = 100 << 20
	maxBackfillBlocks = 50 << 20
)

type backfillResult struct {
	Workouts    int           `json:"workouts"`
	Series      int           `json:"series"`
	Samples     int           `json:"samples"`
	FileBytes   int64         `json:"file_bytes"`
	Write       time.Duration `json:"write_ns"`      // writing the file, as the command logs it
	Total       time.Duration `json:"total_ns"`      // the whole command: the demo's sync and detail fill too
	BlocksBytes int64         `json:"blocks_bytes"`  // 0 without promtool
	Promtool    time.Duration `json:"promtool_ns"`   // making the blocks
	BlockSample int           `json:"block_samples"` // samples in the blocks, to compare with those written
}

func measureBackfill(ctx context.Context, tmp, bin string) ([]backfillResult, error) {
	promtool, _ := exec.LookPath("promtool")
	var out []backfillResult
	for _, n := range backfillSizes {
		logf("backfill of a member of %d workouts", n)
		file := filepath.Join(tmp, fmt.Sprintf("backfill-%d.om", n))
		began := time.Now()
		cmd := exec.CommandContext(ctx, bin, "backfill", "--demo", fmt.Sprintf("--demo.workouts=%d", n-6), // and its 6 imports
			"--label=job=peloton", "--label=instance=bench:10070", "--output="+file)
		log, err := cmd.CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("backfill of %d workouts: %w\n%s", n, err, log)
		}
		r := backfillResult{Workouts: n, Total: time.Since(began)}
		r.Series, r.Samples = logged(log, "series"), logged(log, "samples")
		if m := regexp.MustCompile(`took=(\S+)`).FindSubmatch(log); m != nil {
			r.Write, _ = time.ParseDuration(string(m[1]))
		}
		if fi, err := os.Stat(file); err == nil {
			r.FileBytes = fi.Size()
		}
		if promtool != "" {
			blocks := filepath.Join(tmp, fmt.Sprintf("blocks-%d", n))
			began = time.Now()
			if out, err := exec.CommandContext(ctx, promtool, "tsdb", "create-blocks-from", "openmetrics",
				"--max-block-duration=8760h", file, blocks).CombinedOutput(); err != nil {
				return nil, fmt.Errorf("promtool on %d workouts: %w\n%s", n, err, out)
			}
			r.Promtool = time.Since(began)
			r.BlocksBytes = dirSize(blocks)
			list, err := exec.CommandContext(ctx, promtool, "tsdb", "list", blocks).Output()
			if err != nil {
				return nil, err
			}
			for _, m := range regexp.MustCompile(`(?m)^\S+\s+\d+\s+\d+\s+\S+\s+(\d+)`).FindAllSubmatch(list, -1) {
				v, _ := strconv.Atoi(string(m[1]))
				r.BlockSample += v
			}
			os.RemoveAll(blocks)
		}
		os.Remove(file)
		out = append(out, r)
	}
	return out, nil
}

func logged(log []byte, key string) int {
	m := regexp.MustCompile(`\b` + key + `=(\d+)`).FindSubmatch(log)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

func dirSize(dir string) int64 {
	var total int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error { // never fails: errors are skipped
		if err == nil && !fi.IsDir() {
			total += fi.Size()
		}
		return nil
	})
	return total
}
