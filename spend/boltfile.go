package spend

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// checkBoltFile reads a bbolt file with plain reads and checks what bbolt would trust blindly
// when opening it. bbolt maps the file into memory and follows page numbers and offsets
// without bounds checks; on a damaged file its open-time scan (run in a goroutine of its own
// because of NoFreelistSync) panics or faults, which no recover in this package can catch, and
// a zeroed newest meta page makes it fall back silently to the previous transaction, forgetting
// the spends of the last commit. So before bbolt sees the file, checkBoltFile verifies:
//
//   - both meta pages carry bbolt's magic number and version, and at least one its checksum
//     (a meta page without the magic number was overwritten, never torn by a crash);
//   - the file holds every page below the high-water mark of the meta page bbolt will use;
//   - every page reachable from the root bucket (and the freelist page, if the file has one)
//     has its own page number and a valid type, lies below the high-water mark, is reached
//     once, and keeps every element, key and value inside the page.
//
// The layout follows bbolt's internal/common (page.go, meta.go, inode.go, bucket.go) at
// go.etcd.io/bbolt v1.5.0: https://github.com/etcd-io/bbolt/tree/v1.5.0/internal/common.
// Integers are in the machine's byte order, as bbolt writes them. Key order inside pages is
// not checked here: bbolt's own scan checks it and reports a violation as an ordinary panic
// in the opening goroutine, which OpenBolt turns into an error.
//
// The caller must keep writers out (hold bbolt's file lock) while it runs.
func checkBoltFile(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	c := &boltChecker{f: f, size: st.Size()}
	return c.check()
}

// bbolt's on-disk constants (internal/common/types.go, page.go).
const (
	boltMagic         = 0xED0CDAED
	boltVersion       = 2
	boltPageHeader    = 16 // id u64, flags u16, count u16, overflow u32
	boltElementSize   = 16 // branch: pos u32, ksize u32, pgid u64; leaf: flags u32, pos u32, ksize u32, vsize u32
	boltBucketHeader  = 16 // root pgid u64, sequence u64
	boltBranchFlag    = 0x01
	boltLeafFlag      = 0x02
	boltMetaFlag      = 0x04
	boltFreelistFlag  = 0x10
	boltBucketLeaf    = 0x01 // leaf element flag: the value is a bucket
	boltNoFreelist    = ^uint64(0)
	boltMaxDepth      = 64      // deeper than any real B+tree of bbolt; a deeper path is a cycle
	boltMinPageSize   = 1 << 10 // bbolt's page sizes range from 1 KiB ...
	boltMaxPageSize   = 1 << 24 // ... to 16 MiB (db.go getPageSizeFromSecondMeta)
	boltMaxCheckPages = 1 << 40
)

var ne = binary.NativeEndian

// boltMeta is one decoded meta page.
type boltMeta struct {
	magicOK  bool // magic number and version are bbolt's
	sumOK    bool // and the checksum matches
	pageSize uint64
	root     uint64
	freelist uint64
	hwm      uint64 // pgid: the first page number not in use
	txid     uint64
}

type boltChecker struct {
	f        *os.File
	size     int64
	pageSize uint64
	hwm      uint64
	seen     []uint64 // bit set of the pages reached
	bufs     [][]byte // one page buffer per depth of the walk, reused
}

func (c *boltChecker) reached(id uint64) bool { return c.seen[id/64]&(1<<(id%64)) != 0 }
func (c *boltChecker) reach(id uint64)        { c.seen[id/64] |= 1 << (id % 64) }

func (c *boltChecker) check() error {
	if c.size == 0 {
		return errors.New("the file is empty (0 bytes)")
	}
	m0, err := c.readMeta(0, 0)
	if err != nil {
		return err
	}
	pageSize := m0.pageSize
	if !m0.sumOK && !validPageSize(pageSize) {
		pageSize = uint64(os.Getpagesize())
	}
	m1, err := c.readMeta(1, pageSize)
	if err != nil {
		return err
	}
	for i, m := range []boltMeta{m0, m1} {
		if !m.magicOK {
			return fmt.Errorf("meta page %d is not a bbolt meta page (overwritten?)", i)
		}
	}
	var m boltMeta
	switch {
	case m0.sumOK && m1.sumOK:
		m = m0
		if m1.txid > m0.txid {
			m = m1
		}
		if m0.pageSize != m1.pageSize {
			return fmt.Errorf("the meta pages disagree on the page size (%d, %d)", m0.pageSize, m1.pageSize)
		}
	case m0.sumOK:
		m = m0 // meta page 1 was torn by a crash while it was written: its commit never returned
	case m1.sumOK:
		m = m1
	default:
		return fmt.Errorf("both meta pages fail their checksum")
	}
	c.pageSize = m.pageSize
	if !validPageSize(c.pageSize) {
		return fmt.Errorf("page size %d in the meta page is not a bbolt page size", c.pageSize)
	}
	c.hwm = m.hwm
	if c.hwm < 3 || c.hwm > boltMaxCheckPages {
		return fmt.Errorf("high-water mark %d in the meta page is out of range", c.hwm)
	}
	if need := c.hwm * c.pageSize; uint64(c.size) < need {
		return fmt.Errorf("the file is %d bytes, shorter than the %d pages (%d bytes) its meta page lists: truncated",
			c.size, c.hwm, need)
	}
	c.seen = make([]uint64, (c.hwm+63)/64)
	c.reach(0)
	c.reach(1)
	if m.freelist != boltNoFreelist {
		if err := c.checkFreelist(m.freelist); err != nil {
			return err
		}
	}
	return c.checkTree(m.root, 0)
}

func validPageSize(n uint64) bool {
	return n >= boltMinPageSize && n <= boltMaxPageSize && n&(n-1) == 0
}

// readMeta decodes meta page id, at page size pageSize (0: meta page 0 is at offset 0 and
// carries the page size).
func (c *boltChecker) readMeta(id, pageSize uint64) (boltMeta, error) {
	var buf [boltPageHeader + 64]byte
	if _, err := c.f.ReadAt(buf[:], int64(id*pageSize)); err != nil {
		if errors.Is(err, io.EOF) {
			return boltMeta{}, fmt.Errorf("the file is %d bytes, too short for meta page %d", c.size, id)
		}
		return boltMeta{}, err
	}
	b := buf[boltPageHeader:]
	m := boltMeta{
		magicOK: ne.Uint64(buf[0:]) == id && ne.Uint16(buf[8:]) == boltMetaFlag &&
			ne.Uint32(b[0:]) == boltMagic && ne.Uint32(b[4:]) == boltVersion,
		pageSize: uint64(ne.Uint32(b[8:])),
		root:     ne.Uint64(b[16:]),
		freelist: ne.Uint64(b[32:]),
		hwm:      ne.Uint64(b[40:]),
		txid:     ne.Uint64(b[48:]),
	}
	h := fnv.New64a()
	h.Write(b[:56])
	m.sumOK = m.magicOK && h.Sum64() == ne.Uint64(b[56:])
	return m, nil
}

// readPage reads page id with its overflow pages and checks its header.
func (c *boltChecker) readPage(id uint64, wantFlags uint16, path []uint64) ([]byte, error) {
	if id < 2 || id >= c.hwm {
		return nil, fmt.Errorf("page %d (reached through pages %v) is outside the file's pages 2..%d", id, path, c.hwm-1)
	}
	if c.reached(id) {
		return nil, fmt.Errorf("page %d is referenced twice (through pages %v)", id, path)
	}
	for len(c.bufs) <= len(path) {
		c.bufs = append(c.bufs, make([]byte, c.pageSize))
	}
	buf := c.bufs[len(path)][:c.pageSize]
	if _, err := c.f.ReadAt(buf, int64(id*c.pageSize)); err != nil {
		return nil, err
	}
	if got := ne.Uint64(buf[0:]); got != id {
		return nil, fmt.Errorf("page %d identifies itself as page %d (overwritten?)", id, got)
	}
	flags := ne.Uint16(buf[8:])
	if flags&wantFlags == 0 || flags&(flags-1) != 0 {
		return nil, fmt.Errorf("page %d has type flags %#x, want %#x", id, flags, wantFlags)
	}
	overflow := uint64(ne.Uint32(buf[12:]))
	if id+overflow >= c.hwm {
		return nil, fmt.Errorf("page %d with %d overflow pages runs past the file's last page %d", id, overflow, c.hwm-1)
	}
	for i := id; i <= id+overflow; i++ {
		if c.reached(i) {
			return nil, fmt.Errorf("page %d is referenced twice (as overflow of page %d)", i, id)
		}
		c.reach(i)
	}
	if overflow > 0 {
		buf = append(buf, make([]byte, overflow*c.pageSize)...)
		c.bufs[len(path)] = buf
		if _, err := c.f.ReadAt(buf[c.pageSize:], int64((id+1)*c.pageSize)); err != nil {
			return nil, err
		}
	}
	return buf, nil
}

func (c *boltChecker) checkFreelist(id uint64) error {
	p, err := c.readPage(id, boltFreelistFlag, nil)
	if err != nil {
		return fmt.Errorf("freelist: %w", err)
	}
	n, start := uint64(ne.Uint16(p[10:])), uint64(boltPageHeader)
	if n == 0xFFFF { // the real count is in the first element
		if len(p) < boltPageHeader+8 {
			return fmt.Errorf("freelist page %d is too short", id)
		}
		n, start = ne.Uint64(p[boltPageHeader:]), boltPageHeader+8
	}
	if n > (uint64(len(p))-start)/8 {
		return fmt.Errorf("freelist page %d lists %d pages, more than it holds", id, n)
	}
	for i := range n {
		if fid := ne.Uint64(p[start+8*i:]); fid < 2 || fid >= c.hwm {
			return fmt.Errorf("freelist page %d lists page %d, outside the file's pages", id, fid)
		}
	}
	return nil
}

// checkTree checks the B+tree rooted at page id.
func (c *boltChecker) checkTree(id uint64, depth int) error {
	return c.checkPage(id, []uint64{}, depth)
}

func (c *boltChecker) checkPage(id uint64, path []uint64, depth int) error {
	if len(path)+depth > boltMaxDepth {
		return fmt.Errorf("page %d: the tree is deeper than %d pages (a cycle?)", id, boltMaxDepth)
	}
	p, err := c.readPage(id, boltBranchFlag|boltLeafFlag, path)
	if err != nil {
		return err
	}
	return c.checkNode(p, id, append(path, id), depth)
}

// checkNode checks the elements of one branch or leaf page p (a page of the file, or an
// inline bucket's page inside its value), then descends.
func (c *boltChecker) checkNode(p []byte, id uint64, path []uint64, depth int) error {
	flags, count := ne.Uint16(p[8:]), int(ne.Uint16(p[10:]))
	if boltPageHeader+count*boltElementSize > len(p) {
		return fmt.Errorf("page %d: %d elements do not fit in its %d bytes", id, count, len(p))
	}
	for i := range count {
		e := p[boltPageHeader+i*boltElementSize:]
		at := uint64(boltPageHeader + i*boltElementSize)
		if flags&boltBranchFlag != 0 {
			pos, ksize, child := uint64(ne.Uint32(e[0:])), uint64(ne.Uint32(e[4:])), ne.Uint64(e[8:])
			if at+pos+ksize > uint64(len(p)) {
				return fmt.Errorf("page %d: key %d lies outside the page", id, i)
			}
			if err := c.checkPage(child, path, depth); err != nil {
				return err
			}
			continue
		}
		leafFlags, pos, ksize, vsize := ne.Uint32(e[0:]), uint64(ne.Uint32(e[4:])), uint64(ne.Uint32(e[8:])), uint64(ne.Uint32(e[12:]))
		if at+pos+ksize+vsize > uint64(len(p)) {
			return fmt.Errorf("page %d: element %d lies outside the page", id, i)
		}
		if leafFlags&boltBucketLeaf == 0 {
			continue
		}
		v := p[at+pos+ksize : at+pos+ksize+vsize]
		if len(v) < boltBucketHeader {
			return fmt.Errorf("page %d: bucket %d has a %d-byte header", id, i, len(v))
		}
		root := ne.Uint64(v[0:])
		if root != 0 {
			if err := c.checkPage(root, path, depth+1); err != nil {
				return err
			}
			continue
		}
		inline := v[boltBucketHeader:]
		if len(inline) < boltPageHeader {
			return fmt.Errorf("page %d: inline bucket %d is too short", id, i)
		}
		if f := ne.Uint16(inline[8:]); f != boltLeafFlag {
			return fmt.Errorf("page %d: inline bucket %d has type flags %#x, want a leaf", id, i, f)
		}
		if err := c.checkNode(inline, id, path, depth+1); err != nil {
			return err
		}
	}
	return nil
}
