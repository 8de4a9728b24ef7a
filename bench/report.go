package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Measurement is one row of a report: one quantity measured on each
// system.
type Measurement struct {
	Name string `json:"name"`
	Unit string `json:"unit"`
	// Better is "higher" or "lower": which way a ratio above 1 points.
	Better string `json:"better"`
	// Values holds the value per system (Direct, MinIOSSE, S3seal); a
	// system the quantity does not apply to, or whose run failed, has none.
	// With repeated runs (--repeat) it is the median of Samples.
	Values map[string]float64 `json:"values"`
	// Samples holds every value measured per system when a run repeats
	// its workloads.
	Samples map[string][]float64 `json:"samples,omitempty"`
}

// Machine describes where a report was measured.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	GoVersion string `json:"go_version"`
	MinIO     string `json:"minio"`
}

// Report is the result of a run.
type Report struct {
	Date    time.Time `json:"date"`
	Command string    `json:"command"`
	Machine Machine   `json:"machine"`
	Pinned  bool      `json:"pinned"`
	// NoCompat: the plain MinIO ran with --no-compat.
	NoCompat bool  `json:"no_compat,omitempty"`
	Sizes    Sizes `json:"sizes"`
	// LoadBefore and LoadAfter are /proc/loadavg at the start and the end:
	// other work on the machine shows there.
	LoadBefore   string        `json:"load_before"`
	LoadAfter    string        `json:"load_after"`
	Measurements []Measurement `json:"measurements"`
	// Errors lists the workloads that failed (their values are missing).
	Errors []string `json:"errors,omitempty"`
}

// add records value for system in the row name, creating the row (in
// order of first appearance) if needed. A value measured again (a repeated
// run) joins the samples, and the row shows their median.
func (r *Report) add(name, unit, better, system string, value float64) {
	if math.IsNaN(value) || math.IsInf(value, 0) {
		return
	}
	i := slices.IndexFunc(r.Measurements, func(m Measurement) bool { return m.Name == name })
	if i < 0 {
		r.Measurements = append(r.Measurements, Measurement{
			Name: name, Unit: unit, Better: better, Values: map[string]float64{system: value},
		})
		return
	}
	m := &r.Measurements[i]
	if old, ok := m.Values[system]; ok {
		if m.Samples == nil {
			m.Samples = map[string][]float64{}
		}
		if len(m.Samples[system]) == 0 {
			m.Samples[system] = []float64{old}
		}
		m.Samples[system] = append(m.Samples[system], value)
		value = median(m.Samples[system])
	}
	m.Values[system] = value
}

// median of a non-empty sample (the mean of the middle two for an even
// count).
func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Find returns the row called name.
func (r *Report) Find(name string) (Measurement, bool) {
	for _, m := range r.Measurements {
		if m.Name == name {
			return m, true
		}
	}
	return Measurement{}, false
}

// WriteJSON writes the report as indented JSON to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadReport reads a report written by WriteJSON.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

var tableHeader = []string{"measurement", "unit", "direct", "MinIO SSE", "s3seal", "s3seal/direct", "s3seal/SSE"}

func (r *Report) rows() [][]string {
	out := [][]string{tableHeader}
	for _, m := range r.Measurements {
		row := []string{m.Name, m.Unit}
		for _, s := range Systems {
			row = append(row, formatValue(m.Values, s))
		}
		if m.Unit == unitMsAdded { // differences: their ratios mean nothing
			row = append(row, "-", "-")
		} else {
			row = append(row, formatRatio(m.Values, S3seal, Direct), formatRatio(m.Values, S3seal, MinIOSSE))
		}
		out = append(out, row)
	}
	return out
}

// WriteTable writes the report as an aligned text table: names and units
// left-aligned, numbers right-aligned.
func (r *Report) WriteTable(w io.Writer) error {
	rows := r.rows()
	widths := make([]int, len(tableHeader))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], len(c))
		}
	}
	var b strings.Builder
	for _, row := range rows {
		for i, c := range row {
			pad := strings.Repeat(" ", widths[i]-len(c))
			switch {
			case i < 2:
				b.WriteString(c + pad + "  ")
			case i == len(row)-1:
				b.WriteString(pad + c)
			default:
				b.WriteString(pad + c + "  ")
			}
		}
		b.WriteString("\n")
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	return r.writeErrors(w)
}

// WriteMarkdown writes the report as a Markdown table.
func (r *Report) WriteMarkdown(w io.Writer) error {
	for i, row := range r.rows() {
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
		if i == 0 {
			fmt.Fprintf(w, "|---|---|%s\n", strings.Repeat("---:|", len(row)-2))
		}
	}
	return r.writeErrors(w)
}

func (r *Report) writeErrors(w io.Writer) error {
	for _, e := range r.Errors {
		if _, err := fmt.Fprintln(w, "error:", e); err != nil {
			return err
		}
	}
	return nil
}

func formatValue(v map[string]float64, s string) string {
	x, ok := v[s]
	if !ok {
		return "-"
	}
	return formatNumber(x)
}

func formatRatio(v map[string]float64, num, den string) string {
	a, ok1 := v[num]
	b, ok2 := v[den]
	if !ok1 || !ok2 || b == 0 {
		return "-"
	}
	return formatNumber(a/b) + "x"
}

// formatNumber prints about three significant digits.
func formatNumber(x float64) string {
	switch ax := math.Abs(x); {
	case ax >= 100:
		return fmt.Sprintf("%.0f", x)
	case ax >= 10:
		return fmt.Sprintf("%.1f", x)
	case ax >= 0.1 || ax == 0:
		return fmt.Sprintf("%.2f", x)
	default:
		return fmt.Sprintf("%.3g", x)
	}
}

// loadAvg returns the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// describeMachine reads the CPU count and model and the Go version.
func describeMachine(minioVersion string) Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), MinIO: minioVersion}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}
