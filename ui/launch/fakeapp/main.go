//go:build cgo

// Command fakeapp runs Keyport's real window and tray (fyne's GL driver,
// the system tray over D-Bus) over an in-memory core, ui/fakecore. It is a
// development and benchmark aid for the GUI alone: it starts no proxy and
// touches no keychain or client file.
//
//	KEYPORT_FAKE_SERVERS=N   N generated servers instead of the sample catalog
//	KEYPORT_CONFIG_DIR=DIR   when DIR/servers.yaml exists, its servers (all
//	                         stopped) instead of the sample catalog
//	KEYPORT_READY_FILE=PATH  write PATH once the window is shown (benchmarks)
//	KEYPORT_SCREENSHOTS=DIR  write the views as PNGs and quit (as keyport does)
//	KEYPORT_HEAPPROFILE=PATH write a heap profile 5 s after start (memory work)
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"

	"keyport/app"
	"keyport/app/instance"
	"keyport/ui/fakecore"
	"keyport/ui/launch"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "version" {
		fmt.Println("keyport fakeapp")
		return
	}
	core := fakecore.Sample()
	if dir := os.Getenv("KEYPORT_CONFIG_DIR"); dir != "" {
		if servers, err := loadServers(filepath.Join(dir, "servers.yaml")); err == nil {
			core = fakecore.New(servers...)
		} else if !errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintln(os.Stderr, "fakeapp:", err)
			os.Exit(1)
		}
	}
	if n, err := strconv.Atoi(os.Getenv("KEYPORT_FAKE_SERVERS")); err == nil && n > 0 {
		core = fakecore.New(fakecore.Generate(n)...)
	}
	if p := os.Getenv("KEYPORT_HEAPPROFILE"); p != "" {
		time.AfterFunc(5*time.Second, func() {
			runtime.GC()
			if f, err := os.Create(p); err == nil {
				_ = pprof.WriteHeapProfile(f)
				f.Close()
			}
		})
	}
	err := launch.RunWindow(core, launch.WindowOptions{})
	if errors.Is(err, instance.ErrRunning) {
		fmt.Fprintln(os.Stderr, "fakeapp:", err)
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakeapp:", err)
		os.Exit(1)
	}
}

// loadServers reads the names, descriptions, URLs and labels of a
// servers.yaml (the rest of the format is the real catalog's business).
func loadServers(path string) ([]app.ServerView, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f struct {
		Servers []struct {
			Name, Description, URL string
			Labels                 map[string]string
			Auth                   struct{ Type string }
		}
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []app.ServerView
	for _, s := range f.Servers {
		out = append(out, app.ServerView{Name: s.Name, Description: s.Description, UpstreamURL: s.URL,
			Labels: s.Labels, AuthType: s.Auth.Type})
	}
	return out, nil
}
