package autostart

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestRenderDesktopFile(t *testing.T) {
	t.Parallel()
	e := New("/opt/Key Port/bin/keyport")
	e.Args = []string{"--hidden", `50%$off"`}
	got := desktopFile(e)
	want := "[Desktop Entry]\nType=Application\nName=Keyport\n" +
		"Comment=Secure local access to remote MCP servers for your AI clients\n" +
		`Exec="/opt/Key Port/bin/keyport" --hidden "50%%\\$off\\""` + "\n" +
		"Icon=dev.keyport.Keyport\nTerminal=false\nX-GNOME-Autostart-enabled=true\n"
	if got != want {
		t.Errorf("desktop file =\n%s\nwant\n%s", got, want)
	}
}

func TestExecArg(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/usr/bin/keyport": "/usr/bin/keyport",
		"/a b":             `"/a b"`,
		`a\b`:              `"a\\\\b"`,
		"100%":             "100%%",
		"":                 `""`,
		"x=y":              `"x=y"`,
	} {
		if got := execArg(in); got != want {
			t.Errorf("execArg(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestDesktopEnabled(t *testing.T) {
	t.Parallel()
	for content, want := range map[string]bool{
		desktopFile(New("/k")):                                  true,
		"[Desktop Entry]\nHidden=true\n":                        false,
		"[Desktop Entry]\nX-GNOME-Autostart-enabled=false\n":    false,
		"[Other]\nHidden=true\n[Desktop Entry]\nName=Keyport\n": true,
	} {
		if got := desktopEnabled([]byte(content)); got != want {
			t.Errorf("desktopEnabled(%q) = %t, want %t", content, got, want)
		}
	}
}

func TestRenderLaunchAgent(t *testing.T) {
	t.Parallel()
	e := New("/Applications/Keyport.app/Contents/MacOS/keyport")
	e.Args = []string{"<&>"}
	p := launchAgent(e)
	// It is well-formed XML with the label, the program and RunAtLoad.
	var doc struct {
		Dict struct {
			Keys    []string `xml:"key"`
			Strings []string `xml:"string"`
			Array   struct {
				Strings []string `xml:"string"`
			} `xml:"array"`
		} `xml:"dict"`
	}
	if err := xml.Unmarshal([]byte(p), &doc); err != nil {
		t.Fatalf("plist is not XML: %v\n%s", err, p)
	}
	if strings.Join(doc.Dict.Keys, ",") != "Label,ProgramArguments,RunAtLoad,ProcessType" {
		t.Errorf("keys = %v", doc.Dict.Keys)
	}
	if doc.Dict.Strings[0] != "dev.keyport.Keyport" {
		t.Errorf("label = %q", doc.Dict.Strings[0])
	}
	if a := doc.Dict.Array.Strings; len(a) != 2 || a[0] != e.Exec || a[1] != "<&>" {
		t.Errorf("program arguments = %q", a)
	}
	if !strings.Contains(p, "<key>RunAtLoad</key>\n\t<true/>") {
		t.Error("RunAtLoad is not true")
	}
}

func TestRunCommand(t *testing.T) {
	t.Parallel()
	e := New(`C:\Program Files\Keyport\keyport.exe`)
	e.Args = []string{"--hidden", "a b"}
	if got, want := runCommand(e), `"C:\Program Files\Keyport\keyport.exe" --hidden "a b"`; got != want {
		t.Errorf("runCommand = %s, want %s", got, want)
	}
}

func TestEntryChecks(t *testing.T) {
	t.Parallel()
	for _, e := range []Entry{New(""), New("relative/keyport"), {ID: "a/b", Exec: "/k"}} {
		if err := e.Enable(); err == nil {
			t.Errorf("Enable(%+v) succeeded", e)
		}
	}
}

// TestEnableDisableRoundTrip writes the real entry for this OS into a temp
// folder (on Windows, a scratch registry key) and reads it back.
func TestEnableDisableRoundTrip(t *testing.T) {
	t.Parallel()
	e := New("/usr/local/bin/keyport")
	if runtime.GOOS == "windows" {
		e.Exec = `C:\keyport\keyport.exe`
		e.Dir = `Software\KeyportTest\` + strings.ReplaceAll(t.Name(), "/", "_")
	} else {
		e.Dir = filepath.Join(t.TempDir(), "autostart")
	}
	if on, err := e.Enabled(); err != nil || on {
		t.Fatalf("fresh Enabled = %t, %v", on, err)
	}
	if err := e.Disable(); err != nil {
		t.Fatalf("Disable of nothing: %v", err)
	}
	if err := e.Enable(); err != nil {
		t.Fatal(err)
	}
	if err := e.Enable(); err != nil {
		t.Fatalf("second Enable: %v", err)
	}
	if on, err := e.Enabled(); err != nil || !on {
		t.Fatalf("after Enable: Enabled = %t, %v", on, err)
	}
	if runtime.GOOS != "windows" {
		entries, _ := os.ReadDir(e.Dir)
		if len(entries) != 1 {
			t.Errorf("%d files in the folder, want 1 (no temp file left)", len(entries))
		}
		if runtime.GOOS == "linux" {
			b, err := os.ReadFile(filepath.Join(e.Dir, "dev.keyport.Keyport.desktop"))
			if err != nil || !strings.Contains(string(b), "Exec=/usr/local/bin/keyport\n") {
				t.Errorf("desktop file: %v\n%s", err, b)
			}
		}
	}
	if err := e.Disable(); err != nil {
		t.Fatal(err)
	}
	if on, err := e.Enabled(); err != nil || on {
		t.Fatalf("after Disable: Enabled = %t, %v", on, err)
	}
}

// TestXDGConfigHome checks the default Linux location follows XDG_CONFIG_HOME.
func TestXDGConfigHome(t *testing.T) {
	if runtime.GOOS == "darwin" || runtime.GOOS == "windows" {
		t.Skip("XDG autostart is for Linux and the BSDs")
	}
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	e := New("/usr/bin/keyport")
	if err := e.Enable(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "autostart", "dev.keyport.Keyport.desktop")); err != nil {
		t.Fatalf("entry not under XDG_CONFIG_HOME/autostart: %v", err)
	}
	// A user who hid the entry in their desktop's settings sees it off.
	p := filepath.Join(dir, "autostart", "dev.keyport.Keyport.desktop")
	if err := os.WriteFile(p, []byte("[Desktop Entry]\nHidden=true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if on, _ := e.Enabled(); on {
		t.Error("a Hidden=true entry reads as enabled")
	}
}
