package client_test

import "github.com/b2jet/b2jet/schema"

func names(files []schema.File) []string {
	out := []string{}
	for _, f := range files {
		out = append(out, f.FileName)
	}
	return out
}
