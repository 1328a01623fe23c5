package oauth

import (
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
)

// BrowserOpener returns the function the CLI opens the sign-in URL with.
// When the BROWSER environment variable (read through getenv) is set, it
// is a command that opens a URL: split on spaces, "%s" replaced by the URL
// or the URL appended; several commands may be separated by ':' (the
// first that starts wins). Otherwise the platform's opener is used
// (xdg-open, open, or the Windows URL handler). The command runs without a
// shell; its output is discarded and it is not waited for beyond its start
// (a test's BROWSER script may run the whole sign-in in the background).
func BrowserOpener(getenv func(string) string) func(url string) error {
	return func(u string) error {
		if v := strings.TrimSpace(getenv("BROWSER")); v != "" {
			return runBrowserEnv(v, u)
		}
		name, args := platformOpener(u)
		return startDetached(name, args)
	}
}

// runBrowserEnv tries each ':'-separated command of a BROWSER value.
func runBrowserEnv(value, u string) error {
	var errs []error
	sep := ":"
	if runtime.GOOS == "windows" {
		sep = ";"
	}
	for _, cmd := range strings.Split(value, sep) {
		fields := strings.Fields(cmd)
		if len(fields) == 0 {
			continue
		}
		args := fields[1:]
		replaced := false
		for i, a := range args {
			if strings.Contains(a, "%s") {
				args[i] = strings.ReplaceAll(a, "%s", u)
				replaced = true
			}
		}
		if !replaced {
			args = append(args, u)
		}
		if err := startDetached(fields[0], args); err != nil {
			errs = append(errs, err)
			continue
		}
		return nil
	}
	if len(errs) == 0 {
		return errors.New("BROWSER is set but names no command")
	}
	return fmt.Errorf("BROWSER: %w", errors.Join(errs...))
}

func platformOpener(u string) (string, []string) {
	switch runtime.GOOS {
	case "darwin":
		return "open", []string{u}
	case "windows":
		return "rundll32", []string{"url.dll,FileProtocolHandler", u}
	}
	return "xdg-open", []string{u}
}

// startDetached starts name and reaps it in the background.
func startDetached(name string, args []string) error {
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = cmd.Wait() }()
	return nil
}
