// Command modulescheck lays out every module of this repository as a
// file-based module proxy (the GOPROXY protocol: @v/list, .info, .mod and
// .zip under the escaped module path), all at one version, exactly as a
// consumer would download them after the release tags are pushed. The
// checks in .ci/checks/modules.sh then point GOPROXY at it.
//
// Usage:
//
//	go run . -repo ../.. -version v0.2.0 -out /some/dir
//
// It prints the module paths it wrote, one per line, and fails if any
// released module's go.mod has a replace directive: a replace is ignored
// in a dependency, so the module would build here and break for users.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/zip"
)

func main() {
	repo := flag.String("repo", ".", "repository root")
	version := flag.String("version", "", "version to publish every module at, e.g. v0.2.0")
	out := flag.String("out", "", "directory to write the proxy into")
	dev := flag.String("dev", "", "comma-separated module paths that are never released (left out)")
	flag.Parse()
	if err := run(*repo, *version, *out, strings.Split(*dev, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "modulescheck:", err)
		os.Exit(1)
	}
}

// mod is one module of the repository: its path and its directory
// relative to the repository root ("" for the root module).
type mod struct {
	path string
	dir  string
	dev  bool // never released: not published
}

func run(repo, version, out string, dev []string) error {
	if !semver.IsValid(version) || semver.Canonical(version) != version {
		return fmt.Errorf("-version %q is not a canonical semantic version", version)
	}
	if out == "" {
		return errors.New("-out is required")
	}
	files, err := repoFiles(repo)
	if err != nil {
		return err
	}
	mods, err := findModules(repo, files, dev)
	if err != nil {
		return err
	}
	for _, m := range mods {
		if m.dev {
			continue
		}
		if err := publish(repo, out, version, m, mods, files); err != nil {
			return fmt.Errorf("%s: %w", m.path, err)
		}
		fmt.Println(m.path)
	}
	return nil
}

// repoFiles lists the files a release would contain: tracked files plus
// untracked ones that are not ignored, so a module being written is
// checked before its first commit, and build litter never is.
func repoFiles(repo string) ([]string, error) {
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = repo
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git ls-files: %w", err)
	}
	var files []string
	for _, f := range strings.Split(string(b), "\x00") {
		if f == "" {
			continue
		}
		// A tracked file deleted in the working tree is not released.
		if _, err := os.Lstat(filepath.Join(repo, f)); err != nil {
			continue
		}
		files = append(files, f)
	}
	sort.Strings(files)
	return files, nil
}

// findModules returns the modules whose go.mod is among files, leaving
// out the CI tooling under dot directories and anything under testdata
// (the go command never builds those as part of a module). A module named
// in dev (the benchmarks) is returned marked dev, and may use replace.
func findModules(repo string, files []string, dev []string) ([]mod, error) {
	var mods []mod
	for _, f := range files {
		if path.Base(f) != "go.mod" || hidden(f) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(repo, f))
		if err != nil {
			return nil, err
		}
		mf, err := modfile.Parse(f, data, nil)
		if err != nil {
			return nil, err
		}
		if mf.Module == nil {
			return nil, fmt.Errorf("%s: no module line", f)
		}
		dir := path.Dir(f)
		if dir == "." {
			dir = ""
		}
		if slices.Contains(dev, mf.Module.Mod.Path) {
			// Still a module: its files stay out of its parent's zip.
			mods = append(mods, mod{path: mf.Module.Mod.Path, dir: dir, dev: true})
			continue
		}
		if len(mf.Replace) > 0 {
			return nil, fmt.Errorf("%s has a replace directive: it is ignored when the module is a dependency, so users would build something else; use go.work for local development", f)
		}
		mods = append(mods, mod{path: mf.Module.Mod.Path, dir: dir})
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].dir < mods[j].dir })
	if len(mods) == 0 || mods[0].dir != "" {
		return nil, errors.New("no go.mod at the repository root")
	}
	return mods, nil
}

// hidden reports whether f lies under a directory the go command ignores.
func hidden(f string) bool {
	dir := path.Dir(f)
	if dir == "." {
		return false
	}
	for _, el := range strings.Split(dir, "/") {
		if el == "testdata" || strings.HasPrefix(el, ".") || strings.HasPrefix(el, "_") {
			return true
		}
	}
	return false
}

// publish writes m's list, info, mod and zip files.
func publish(repo, out, version string, m mod, mods []mod, files []string) error {
	esc, err := module.EscapePath(m.path)
	if err != nil {
		return err
	}
	dir := filepath.Join(out, filepath.FromSlash(esc), "@v")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "list"), []byte(version+"\n"), 0o644); err != nil {
		return err
	}
	info, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, time.Now().UTC().Truncate(time.Second)})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, version+".info"), info, 0o644); err != nil {
		return err
	}
	gomod, err := os.ReadFile(filepath.Join(repo, m.dir, "go.mod"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, version+".mod"), gomod, 0o644); err != nil {
		return err
	}
	zf, err := os.Create(filepath.Join(dir, version+".zip"))
	if err != nil {
		return err
	}
	zfiles := moduleFiles(repo, m, mods, files)
	if err := zip.Create(zf, module.Version{Path: m.path, Version: version}, zfiles); err != nil {
		zf.Close()
		return err
	}
	return zf.Close()
}

// moduleFiles returns the files of m: those under its directory and not
// under a nested module's. Like the go command fetching a module from a
// subdirectory of a repository, it adds the root LICENSE to a module that
// has none of its own.
func moduleFiles(repo string, m mod, mods []mod, files []string) []zip.File {
	var zfiles []zip.File
	hasLicense := false
	for _, f := range files {
		if owner(f, mods) != m {
			continue
		}
		rel := f
		if m.dir != "" {
			rel = strings.TrimPrefix(f, m.dir+"/")
		}
		if rel == "LICENSE" {
			hasLicense = true
		}
		zfiles = append(zfiles, diskFile{name: rel, path: filepath.Join(repo, f)})
	}
	if !hasLicense {
		if _, err := os.Stat(filepath.Join(repo, "LICENSE")); err == nil {
			zfiles = append(zfiles, diskFile{name: "LICENSE", path: filepath.Join(repo, "LICENSE")})
		}
	}
	return zfiles
}

// owner returns the module whose directory is the longest prefix of f.
func owner(f string, mods []mod) mod {
	best := mods[0]
	for _, m := range mods[1:] {
		if strings.HasPrefix(f, m.dir+"/") && len(m.dir) > len(best.dir) {
			best = m
		}
	}
	return best
}

// diskFile is a zip.File read from disk.
type diskFile struct {
	name string // slash-separated path inside the module
	path string
}

func (f diskFile) Path() string { return f.name }

func (f diskFile) Lstat() (os.FileInfo, error) { return os.Lstat(f.path) }

func (f diskFile) Open() (io.ReadCloser, error) { return os.Open(f.path) }
