package autostart

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"strings"
)

// The renderers are plain functions of the Entry, compiled on every OS so
// each format is tested everywhere.

// desktopFile renders an XDG autostart desktop entry.
func desktopFile(e Entry) string {
	var b strings.Builder
	b.WriteString("[Desktop Entry]\n")
	b.WriteString("Type=Application\n")
	b.WriteString("Name=" + desktopString(e.Name) + "\n")
	if e.Comment != "" {
		b.WriteString("Comment=" + desktopString(e.Comment) + "\n")
	}
	args := append([]string{e.Exec}, e.Args...)
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = execArg(a)
	}
	b.WriteString("Exec=" + strings.Join(quoted, " ") + "\n")
	b.WriteString("Icon=" + desktopString(e.ID) + "\n")
	b.WriteString("Terminal=false\n")
	b.WriteString("X-GNOME-Autostart-enabled=true\n")
	return b.String()
}

// desktopString escapes a string value (the spec's \n, \t, \r, \\).
func desktopString(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\t", `\t`, "\r", `\r`).Replace(s)
}

// execArg quotes one Exec argument as the Desktop Entry spec requires:
// reserved characters force double quotes, inside which ", `, $ and \ are
// backslash-escaped; % is doubled (field codes); then the whole value is
// escaped as a string.
func execArg(a string) string {
	a = strings.ReplaceAll(a, "%", "%%")
	if a != "" && !strings.ContainsAny(a, " \t\n\"'\\><~|&;$*?#()`=") {
		return desktopString(a)
	}
	q := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "`", "\\`", `$`, `\$`).Replace(a)
	return desktopString(`"` + q + `"`)
}

// desktopEnabled reports whether a desktop file's content starts the
// program: not Hidden=true, and not X-GNOME-Autostart-enabled=false.
func desktopEnabled(content []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(content))
	inEntry := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			inEntry = line == "[Desktop Entry]"
			continue
		}
		if !inEntry {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if (k == "Hidden" && v == "true") || (k == "X-GNOME-Autostart-enabled" && v == "false") {
			return false
		}
	}
	return true
}

// launchAgent renders a macOS LaunchAgent property list that starts the
// program once at login.
func launchAgent(e Entry) string {
	var b strings.Builder
	esc := func(s string) string {
		var x bytes.Buffer
		_ = xml.EscapeText(&x, []byte(s))
		return x.String()
	}
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">` + "\n")
	b.WriteString(`<plist version="1.0">` + "\n<dict>\n")
	b.WriteString("\t<key>Label</key>\n\t<string>" + esc(e.ID) + "</string>\n")
	b.WriteString("\t<key>ProgramArguments</key>\n\t<array>\n")
	for _, a := range append([]string{e.Exec}, e.Args...) {
		b.WriteString("\t\t<string>" + esc(a) + "</string>\n")
	}
	b.WriteString("\t</array>\n")
	b.WriteString("\t<key>RunAtLoad</key>\n\t<true/>\n")
	b.WriteString("\t<key>ProcessType</key>\n\t<string>Interactive</string>\n")
	b.WriteString("</dict>\n</plist>\n")
	return b.String()
}

// runCommand renders the Windows Run value: the quoted program and its
// arguments (Windows command-line quoting).
func runCommand(e Entry) string {
	parts := []string{`"` + e.Exec + `"`}
	for _, a := range e.Args {
		if a == "" || strings.ContainsAny(a, " \t\"") {
			a = `"` + strings.ReplaceAll(a, `"`, `\"`) + `"`
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}
