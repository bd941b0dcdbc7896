package main

import (
	"io"
	"testing"

	"github.com/spf13/cobra"
)

// Every command's --help teaches by example.
func TestEveryCommandHasAnExample(t *testing.T) {
	root := newRootCmd(io.Discard, io.Discard)
	root.InitDefaultCompletionCmd()
	root.InitDefaultHelpCmd()
	addCompletionExamples(root)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Example == "" && c.Name() != "help" {
			t.Errorf("%q has no example in its --help", c.CommandPath())
		}
		if c.Short == "" {
			t.Errorf("%q has no short description", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
