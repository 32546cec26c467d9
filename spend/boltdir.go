package spend

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The embedded store's directory holds the store file (spent.db by convention) and a marker,
// STORE, written when the store is created:
//
//	# ppredeem embedded spent-token store. ...
//	id: 7d3f8a52-0c1e-4b7a-9a51-3c2d1e0f9b86
//	created_at: 2025-01-02T15:04:05.123456789Z
//
// The marker is what tells "a store was created here" from "nothing is here yet": a
// directory with a marker but no store file, or with an empty store file, is a store that
// was lost, and opening it as a fresh store would make every token it recorded redeemable
// again. The same identity is kept inside the store file, so a store file swapped for
// another store's is refused too.

// MarkerName is the name of the marker file beside the embedded store's file.
const MarkerName = "STORE"

const (
	markerTemp   = ".STORE.tmp"
	markerHeader = "# ppredeem embedded spent-token store. The store file beside this marker records every\n" +
		"# redeemed token: losing it makes them redeemable again. Back it up; never delete it alone.\n"
)

// ignoredEntries may sit in a new, empty data directory: a file system's lost+found, and
// a marker write interrupted by a crash.
var ignoredEntries = []string{"lost+found", markerTemp}

// boltDir is what a data directory holds.
type boltDir struct {
	dir, file  string // paths of the directory and the store file
	dirMissing bool
	others     []string // entries other than the store file, the marker and ignoredEntries
	fileExists bool
	fileSize   int64
	marker     *Identity // nil: no usable marker
	markerErr  error     // a marker that exists but cannot be read or parsed
}

func (d *boltDir) hasMarker() bool { return d.marker != nil || d.markerErr != nil }

// empty reports a directory where a new store may be created.
func (d *boltDir) empty() bool {
	return !d.fileExists && !d.hasMarker() && len(d.others) == 0
}

func inspectDir(path string) (*boltDir, error) {
	d := &boltDir{dir: filepath.Dir(path), file: path}
	entries, err := os.ReadDir(d.dir)
	if errors.Is(err, fs.ErrNotExist) {
		d.dirMissing = true
		return d, nil
	}
	if err != nil {
		return nil, fmt.Errorf("spend: bolt: read data directory: %w", err)
	}
	base := filepath.Base(path)
	for _, e := range entries {
		switch name := e.Name(); {
		case name == base:
			st, err := os.Stat(path)
			if err != nil {
				return nil, fmt.Errorf("spend: bolt: %w", err)
			}
			if !st.Mode().IsRegular() {
				return nil, fmt.Errorf("spend: bolt: %s is not a regular file", path)
			}
			d.fileExists, d.fileSize = true, st.Size()
		case name == MarkerName:
			id, err := readMarker(filepath.Join(d.dir, MarkerName))
			d.marker, d.markerErr = id, err
		case !slices.Contains(ignoredEntries, name):
			d.others = append(d.others, name)
		}
	}
	return d, nil
}

// refusal explains why the directory cannot be opened as a store, or returns nil.
func (d *boltDir) refusal(mustExist bool) error {
	created := ""
	if d.marker != nil {
		created = fmt.Sprintf(" (store %s, created at %s)", d.marker.ID, timestamp(d.marker.CreatedAt))
	}
	switch {
	case d.empty() && mustExist:
		return newError(ErrNoStore, "spend: no embedded store in %s: the directory is missing or empty", d.dir)
	case d.empty():
		return nil
	case d.fileExists && d.fileSize == 0:
		return newError(ErrStoreLost, "spend: %s is empty (0 bytes)%s: refusing to start a fresh store in its place, which would make "+
			"every token it recorded redeemable again. Restore it from a backup; only if this directory is new and its first start "+
			"was interrupted, delete the file", d.file, created)
	case !d.fileExists && d.hasMarker():
		return newError(ErrStoreLost, "spend: %s is missing, but %s says a store was created here%s: refusing to start a fresh "+
			"store, which would make every token it recorded redeemable again. Restore the file from a backup",
			d.file, filepath.Join(d.dir, MarkerName), created)
	case !d.fileExists:
		return newError(ErrNoStore, "spend: %s is not empty (%s) and holds no embedded store (no %s, no %s): refusing to create a "+
			"store among other files; set the data directory to an empty or new directory, or to an existing store's",
			d.dir, strings.Join(d.others, ", "), filepath.Base(d.file), MarkerName)
	}
	return nil
}

// newIdentity makes a store identity: a random (version 4) UUID and the time now.
func newIdentity() Identity {
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // variant 10 (RFC 9562 §4.1)
	return Identity{
		ID:        fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:]),
		CreatedAt: time.Now().UTC(),
	}
}

func readMarker(path string) (*Identity, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("spend: bolt: read marker: %w", err)
	}
	var id Identity
	var created string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("spend: bolt: marker %s: line %q is not key: value", path, line)
		}
		switch strings.TrimSpace(k) {
		case "id":
			id.ID = strings.TrimSpace(v)
		case "created_at":
			created = strings.TrimSpace(v)
		}
	}
	t, err := time.Parse(time.RFC3339Nano, created)
	if err != nil || id.ID == "" {
		return nil, fmt.Errorf("spend: bolt: marker %s: want an id and a created_at (RFC 3339) line", path)
	}
	id.CreatedAt = t.UTC()
	return &id, nil
}

// writeMarker writes dir's marker atomically: a temporary file, synced, renamed over the
// marker, and the directory synced.
func writeMarker(dir string, id Identity) error {
	body := fmt.Sprintf("%sid: %s\ncreated_at: %s\n", markerHeader, id.ID, id.CreatedAt.UTC().Format(time.RFC3339Nano))
	tmp := filepath.Join(dir, markerTemp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("spend: bolt: write marker: %w", err)
	}
	_, err = f.WriteString(body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, MarkerName))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("spend: bolt: write marker: %w", err)
	}
	return nil
}

// syncDir makes the directory's entries (a created or renamed file) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
