package app

import "strings"

// quickStatus parses `status [--socket S | --socket=S] [--json] [NAME...]`, the verb that
// scripts and prompts run most, without kong: building kong's model of the command line
// costs about 0.3 ms of every run, a tenth of the verb's budget (README "Performance").
// Anything else (help, another flag, "--") returns false and kong parses as usual;
// TestQuickStatusParsesAsKong holds the two to the same result.
func quickStatus(args []string) (*StatusCmd, bool) {
	if len(args) == 0 || args[0] != "status" {
		return nil, false
	}
	c := &StatusCmd{}
	for i := 1; i < len(args); i++ {
		a := args[i]
		if len(c.Names) > 0 && strings.HasPrefix(a, "-") {
			// kong takes names in one run: after a flag that follows them, a name is an
			// error it words. Flags that only follow the names are left to it too.
			return nil, false
		}
		switch {
		case a == "--json":
			c.JSON = true
		case a == "--socket" && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-"):
			i++
			c.Socket = args[i]
		case strings.HasPrefix(a, "--socket="):
			c.Socket = strings.TrimPrefix(a, "--socket=")
		case a == "" || strings.HasPrefix(a, "-"):
			return nil, false
		default:
			c.Names = append(c.Names, a)
		}
	}
	return c, true
}
