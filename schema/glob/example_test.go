package glob_test

import (
	"fmt"

	"github.com/b2jet/b2jet/schema/glob"
)

func Example() {
	g := glob.MustCompile("exports/2026-05/**.csv")
	fmt.Println(g.LiteralPrefix())
	for _, name := range []string{
		"exports/2026-05/a.csv",
		"exports/2026-05/x/y/b.csv",
		"exports/2026-05/a.txt",
		"exports/2026-06/a.csv",
	} {
		fmt.Println(name, g.Match(name))
	}
	_, err := glob.Compile("exports/[0-9")
	fmt.Println(err)
	// Output:
	// exports/2026-05/
	// exports/2026-05/a.csv true
	// exports/2026-05/x/y/b.csv true
	// exports/2026-05/a.txt false
	// exports/2026-06/a.csv false
	// glob: unterminated character class at offset 8
}
