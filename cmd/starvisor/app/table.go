package app

import (
	"io"
	"strings"

	"github.com/starvisor/starvisor/engine/logs"
)

// writeColumns writes rows as columns two spaces apart, each padded to the widest of
// its cells as a terminal shows them (logs.Width: サービス takes eight columns, where
// tabwriter counted four), the last left as it is.
func writeColumns(w io.Writer, rows [][]string) error {
	var widths []int
	for _, row := range rows {
		for i, cell := range row {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], logs.Width(cell))
		}
	}
	var b strings.Builder
	for _, row := range rows {
		for i, cell := range row {
			if i == len(row)-1 {
				b.WriteString(cell)
				break
			}
			b.WriteString(logs.Pad(cell, widths[i]))
			b.WriteString("  ")
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}
