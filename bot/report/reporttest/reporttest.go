// Package reporttest holds checks of rendered reports shared by the tests
// of bot/report and of the bot that renders with it.
package reporttest

import "strings"

// OpenFence returns the code fence left open at the end of md, or "".
func OpenFence(md string) string {
	open := ""
	for _, line := range strings.Split(md, "\n") {
		if f := fenceOf(line); f != "" {
			switch {
			case open == "":
				open = f
			case f == open:
				open = ""
			}
		}
	}
	return open
}

// fenceOf is the backtick fence a line consists of, or "".
func fenceOf(line string) string {
	if len(line) >= 3 && strings.Trim(line, "`") == "" {
		return line
	}
	return ""
}
