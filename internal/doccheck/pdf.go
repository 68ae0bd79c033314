package doccheck

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// activeNames are the PDF names that mark active content, and what each
// says. A JavaScript action needs /S /JavaScript (and /JS) wherever it
// hangs (/OpenAction, /AA, /Names), so a name anywhere is enough: no
// reader runs JavaScript without one of these names in a dictionary.
var activeNames = map[string]string{
	"JS":            "JavaScript",
	"JavaScript":    "JavaScript",
	"Launch":        "launch action",
	"EmbeddedFile":  "embedded file",
	"EmbeddedFiles": "embedded file",
	"EF":            "embedded file",
	"GoToE":         "embedded file",
	"RichMedia":     "rich media",
	"XFA":           "XFA form",
}

// Limits of the PDF check.
const (
	// MaxInflated is how many bytes the object streams of one PDF may
	// inflate to, in all; past it the PDF is refused as malformed.
	MaxInflated = 64 << 20
	maxDepth    = 64   // nesting of arrays and dictionaries
	maxToken    = 4096 // bytes of a name, number or keyword
)

var endstream = []byte("endstream")

// PDF reads a whole PDF from r and returns nil when it parses and holds no
// active content. It returns an error wrapping ErrUnsafe for a name of
// active content (/JS, /JavaScript, /Launch, /EmbeddedFile(s), /EF, /GoToE,
// /RichMedia, /XFA) anywhere in the file's dictionaries, those inside
// compressed object streams included; and one wrapping ErrMalformed for a
// file that does not parse, is encrypted, hides "n g obj" inside a stream's
// data, or has an object stream it cannot inflate. A read error of r is
// returned as it is. PDF reads r to its end unless it refuses first.
//
// The check is a strict, streaming reading of the file from its first byte
// to its last: every byte is either a token of the file's structure
// (objects, cross-reference tables, trailers) or the data of a stream.
// Stream data is skipped by its /Length (or up to "endstream"), except for
// object streams (/Type /ObjStm, or any stream with /First, as readers use
// them), which are inflated and searched for the names. Strings are not
// searched, and the names are compared after #xx escapes are decoded.
func PDF(r io.Reader) error {
	src := &trackErr{r: r}
	p := &pdfParser{br: bufio.NewReaderSize(src, 64<<10)}
	err := p.file()
	if src.err != nil {
		return src.err
	}
	return err
}

// trackErr remembers the first read error other than EOF.
type trackErr struct {
	r   io.Reader
	err error
}

func (t *trackErr) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF && t.err == nil {
		t.err = err
	}
	return n, err
}

type tokKind int

const (
	tEOF tokKind = iota
	tInt
	tReal
	tName
	tString
	tDictOpen
	tDictClose
	tArrOpen
	tArrClose
	tKeyword
)

type token struct {
	kind tokKind
	s    string // a name (decoded) or a keyword
	n    int64  // an integer
}

func (t token) is(keyword string) bool { return t.kind == tKeyword && t.s == keyword }

// dictInfo is what the check keeps of a dictionary: what a stream needs.
type dictInfo struct {
	length      int64
	lengthKnown bool // a direct integer /Length
	filters     []string
	filterOther bool // a /Filter that is not a name or an array of names
	parms       bool // /DecodeParms other than null
	typ         string
	first       bool
}

type val struct {
	kind  tokKind
	n     int64
	ref   bool
	name  string
	names []string // an array's names (the first few)
	dict  *dictInfo
}

type pdfParser struct {
	br         *bufio.Reader
	back       []token
	eofMark    bool // the last thing read was a %%EOF comment
	objects    int
	trailer    bool
	xrefStream bool
	startxref  bool
	inflated   int64
}

func isSpace(c byte) bool {
	switch c {
	case 0, '\t', '\n', '\f', '\r', ' ':
		return true
	}
	return false
}

func isDelim(c byte) bool {
	switch c {
	case '(', ')', '<', '>', '[', ']', '{', '}', '/', '%':
		return true
	}
	return false
}

func isRegular(c byte) bool { return !isSpace(c) && !isDelim(c) }

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// file reads the whole file: objects, cross-reference tables, trailers.
func (p *pdfParser) file() error {
	head, _ := p.br.Peek(5)
	if string(head) != "%PDF-" {
		return malformed("no PDF header")
	}
	for {
		t, err := p.next()
		if err != nil {
			return err
		}
		switch {
		case t.kind == tEOF:
			return p.finish()
		case t.kind == tInt:
			if err := p.indirectObject(); err != nil {
				return err
			}
		case t.is("xref"):
			if err := p.xrefTable(); err != nil {
				return err
			}
		case t.is("trailer"):
			v, err := p.value(0)
			if err != nil {
				return err
			}
			if v.kind != tDictOpen {
				return malformed("trailer is not a dictionary")
			}
			p.trailer = true
		case t.is("startxref"):
			t, err := p.next()
			if err != nil {
				return err
			}
			if t.kind != tInt {
				return malformed("startxref without an offset")
			}
			p.startxref = true
		default:
			return malformed("unexpected content between objects")
		}
	}
}

func (p *pdfParser) finish() error {
	switch {
	case p.objects == 0:
		return malformed("no objects")
	case !p.trailer && !p.xrefStream:
		return malformed("no trailer")
	case !p.startxref:
		return malformed("no startxref")
	case !p.eofMark:
		return malformed("does not end with %%EOF")
	}
	return nil
}

// indirectObject reads "g obj value endobj" after the object number, the
// value followed by a stream's data when it is one.
func (p *pdfParser) indirectObject() error {
	gen, err := p.next()
	if err != nil {
		return err
	}
	kw, err := p.next()
	if err != nil {
		return err
	}
	if gen.kind != tInt || !kw.is("obj") {
		return malformed("object header is not \"n g obj\"")
	}
	v, err := p.value(0)
	if err != nil {
		return err
	}
	t, err := p.next()
	if err != nil {
		return err
	}
	if t.is("stream") {
		if v.kind != tDictOpen {
			return malformed("stream without a dictionary")
		}
		if err := p.stream(v.dict); err != nil {
			return err
		}
		if t, err = p.next(); err != nil {
			return err
		}
	}
	if !t.is("endobj") {
		return malformed("object without endobj")
	}
	p.objects++
	return nil
}

// xrefTable reads the subsections of a cross-reference table up to its
// trailer keyword.
func (p *pdfParser) xrefTable() error {
	for {
		t, err := p.next()
		if err != nil {
			return err
		}
		if t.is("trailer") {
			p.unread(t)
			return nil
		}
		count, err := p.next()
		if err != nil {
			return err
		}
		if t.kind != tInt || count.kind != tInt || count.n < 0 {
			return malformed("bad cross-reference subsection")
		}
		for range count.n {
			off, err := p.next()
			if err != nil {
				return err
			}
			gen, err := p.next()
			if err != nil {
				return err
			}
			kind, err := p.next()
			if err != nil {
				return err
			}
			if off.kind != tInt || gen.kind != tInt || !(kind.is("n") || kind.is("f")) {
				return malformed("bad cross-reference entry")
			}
		}
	}
}

func (p *pdfParser) unread(t token) { p.back = append(p.back, t) }

// value reads one object: a number, reference, name, string, array,
// dictionary, boolean or null.
func (p *pdfParser) value(depth int) (val, error) {
	if depth > maxDepth {
		return val{}, malformed("nested too deeply")
	}
	t, err := p.next()
	if err != nil {
		return val{}, err
	}
	switch t.kind {
	case tInt:
		// "n g R" is a reference.
		t2, err := p.next()
		if err != nil {
			return val{}, err
		}
		if t2.kind == tInt {
			t3, err := p.next()
			if err != nil {
				return val{}, err
			}
			if t3.is("R") {
				return val{kind: tInt, ref: true}, nil
			}
			p.unread(t3)
		}
		p.unread(t2)
		return val{kind: tInt, n: t.n}, nil
	case tReal, tString:
		return val{kind: t.kind}, nil
	case tName:
		return val{kind: tName, name: t.s}, nil
	case tKeyword:
		if t.s == "true" || t.s == "false" || t.s == "null" {
			return val{kind: tKeyword, name: t.s}, nil
		}
		return val{}, malformed("unexpected keyword in an object")
	case tArrOpen:
		v := val{kind: tArrOpen}
		for {
			t, err := p.next()
			if err != nil {
				return val{}, err
			}
			if t.kind == tArrClose {
				return v, nil
			}
			p.unread(t)
			e, err := p.value(depth + 1)
			if err != nil {
				return val{}, err
			}
			if len(v.names) < 8 {
				if e.kind == tName {
					v.names = append(v.names, e.name)
				} else {
					v.names = append(v.names, "")
				}
			}
		}
	case tDictOpen:
		d, err := p.dict(depth)
		if err != nil {
			return val{}, err
		}
		return val{kind: tDictOpen, dict: d}, nil
	}
	return val{}, malformed("unexpected token in an object")
}

// dict reads a dictionary's entries after "<<" and keeps what a stream
// needs of them.
func (p *pdfParser) dict(depth int) (*dictInfo, error) {
	d := &dictInfo{}
	for {
		k, err := p.next()
		if err != nil {
			return nil, err
		}
		if k.kind == tDictClose {
			return d, nil
		}
		if k.kind != tName {
			return nil, malformed("dictionary key is not a name")
		}
		if k.s == "Encrypt" {
			return nil, malformed("encrypted PDF")
		}
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		switch k.s {
		case "Length":
			if v.kind == tInt && !v.ref {
				d.length, d.lengthKnown = v.n, true
			}
		case "Filter":
			switch {
			case v.kind == tName:
				d.filters = []string{v.name}
			case v.kind == tArrOpen && len(v.names) < 8:
				d.filters = v.names
			default:
				d.filterOther = true
			}
		case "DecodeParms":
			d.parms = !(v.kind == tKeyword && v.name == "null")
		case "Type":
			d.typ = v.name
			if v.name == "XRef" {
				p.xrefStream = true
			}
		case "First":
			d.first = true
		}
	}
}

// stream reads a stream's data after the "stream" keyword, and its
// "endstream".
func (p *pdfParser) stream(d *dictInfo) error {
	c, err := p.br.ReadByte()
	if err != nil {
		return malformed("truncated stream")
	}
	if c == '\r' {
		if next, err := p.br.Peek(1); err == nil && next[0] == '\n' {
			_, _ = p.br.ReadByte()
		}
	} else if c != '\n' {
		return malformed("no end of line after stream")
	}
	var data io.Reader
	var limited *io.LimitedReader
	if d.lengthKnown {
		if d.length < 0 {
			return malformed("negative stream length")
		}
		limited = &io.LimitedReader{R: p.br, N: d.length}
		data = limited
	} else {
		data = &untilEndstream{br: p.br}
	}
	if d.typ == "ObjStm" || d.first {
		err = p.objectStream(data, d)
	} else {
		err = scanOpaque(data)
	}
	if err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, data); err != nil {
		return err
	}
	if limited == nil {
		return nil // untilEndstream read the keyword
	}
	if limited.N > 0 {
		return malformed("stream shorter than its length")
	}
	t, err := p.next()
	if err != nil {
		return err
	}
	if !t.is("endstream") {
		return malformed("stream data does not end at its length")
	}
	return nil
}

// objectStream inflates an object stream and searches it for the names.
func (p *pdfParser) objectStream(data io.Reader, d *dictInfo) error {
	if d.parms || d.filterOther || len(d.filters) > 1 {
		return malformed("object stream with filters the check cannot undo")
	}
	src := data
	if len(d.filters) == 1 {
		if d.filters[0] != "FlateDecode" {
			return malformed("object stream with filters the check cannot undo")
		}
		zr, err := zlib.NewReader(data)
		if err != nil {
			return p.inflateErr(err)
		}
		defer zr.Close()
		src = zr
	}
	lim := &io.LimitedReader{R: src, N: MaxInflated - p.inflated + 1}
	n, err := scanNames(lim)
	p.inflated += n
	if err != nil {
		return p.inflateErr(err)
	}
	if p.inflated > MaxInflated {
		return malformed("object streams inflate past the limit")
	}
	return nil
}

// inflateErr keeps the check's own errors and names any other one.
func (p *pdfParser) inflateErr(err error) error {
	if errors.Is(err, ErrMalformed) || errors.Is(err, ErrUnsafe) {
		return err
	}
	return malformed("object stream does not inflate")
}

// scanNames searches r for the names of active content, wherever a name
// could start (strings included: a false alarm costs a refusal, a missed
// name costs a script). It returns the bytes read.
func scanNames(r io.Reader) (int64, error) {
	var (
		buf    = make([]byte, 32<<10)
		total  int64
		inName bool
		name   []byte
		hexAt  int // position in a #xx escape: 0 none, 1 after '#', 2 after the first digit
		hexHi  byte
	)
	end := func() error {
		if hexAt == 1 {
			name = append(name, '#')
		} else if hexAt == 2 {
			name = append(name, '#', "0123456789ABCDEF"[hexHi])
		}
		hexAt = 0
		if why, bad := activeNames[string(name)]; bad {
			return fmt.Errorf("%w: %s", ErrUnsafe, why)
		}
		inName = false
		name = name[:0]
		return nil
	}
	for {
		n, err := r.Read(buf)
		total += int64(n)
		for _, c := range buf[:n] {
			if inName {
				if isRegular(c) && len(name) < maxToken {
					switch {
					case hexAt == 0 && c == '#':
						hexAt = 1
					case hexAt == 1:
						if v, ok := unhex(c); ok {
							hexHi, hexAt = v, 2
						} else {
							name, hexAt = append(name, '#', c), 0
						}
					case hexAt == 2:
						if v, ok := unhex(c); ok {
							name, hexAt = append(name, hexHi<<4|v), 0
						} else {
							name, hexAt = append(name, '#', "0123456789ABCDEF"[hexHi], c), 0
						}
					default:
						name = append(name, c)
					}
					continue
				}
				if err := end(); err != nil {
					return total, err
				}
			}
			if c == '/' {
				inName = true
			}
		}
		if err == io.EOF {
			if inName {
				if err := end(); err != nil {
					return total, err
				}
			}
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// scanOpaque reads a stream's data and refuses it when it holds what a
// reader that rebuilds a damaged file's cross-references would take for an
// object ("n g obj"): the check does not read stream data as objects, so
// nothing may hide there.
func scanOpaque(r io.Reader) error {
	buf := make([]byte, 32<<10)
	state := 0 // 1 digits, 2 space, 3 digits, 4 space, 5 "o", 6 "ob"
	for {
		n, err := r.Read(buf)
		for _, c := range buf[:n] {
			switch {
			case c >= '0' && c <= '9':
				switch state {
				case 0, 1, 5, 6:
					state = 1
				case 2, 3, 4:
					state = 3
				}
			case isSpace(c):
				switch state {
				case 1, 2:
					state = 2
				case 3, 4:
					state = 4
				default:
					state = 0
				}
			case c == 'o' && (state == 3 || state == 4):
				state = 5
			case c == 'b' && state == 5:
				state = 6
			case c == 'j' && state == 6:
				return malformed("an object inside stream data")
			default:
				state = 0
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// untilEndstream reads a stream's data up to the "endstream" keyword, which
// it consumes; for a stream whose /Length is a reference.
type untilEndstream struct {
	br   *bufio.Reader
	done bool
}

func (u *untilEndstream) Read(b []byte) (int, error) {
	if u.done {
		return 0, io.EOF
	}
	buf, err := u.br.Peek(u.br.Size())
	if i := bytes.Index(buf, endstream); i >= 0 {
		n := copy(b, buf[:i])
		_, _ = u.br.Discard(n)
		if n == i {
			_, _ = u.br.Discard(len(endstream))
			u.done = true
		}
		return n, nil
	}
	if err != nil {
		if err == io.EOF {
			return 0, malformed("stream without endstream")
		}
		return 0, err
	}
	n := copy(b, buf[:len(buf)-(len(endstream)-1)])
	_, _ = u.br.Discard(n)
	return n, nil
}

// skipSpace skips white space and comments, noting a %%EOF comment.
func (p *pdfParser) skipSpace() error {
	for {
		c, err := p.br.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if isSpace(c) {
			continue
		}
		if c != '%' {
			return p.br.UnreadByte()
		}
		var head [5]byte
		n := 0
		for {
			c, err := p.br.ReadByte()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			if c == '\r' || c == '\n' {
				break
			}
			if n < len(head) {
				head[n] = c
				n++
			}
		}
		if n >= 4 && string(head[:4]) == "%EOF" {
			p.eofMark = true
		}
	}
}

// next returns the next token; a name of active content is an error.
func (p *pdfParser) next() (token, error) {
	if n := len(p.back); n > 0 {
		t := p.back[n-1]
		p.back = p.back[:n-1]
		return t, nil
	}
	if err := p.skipSpace(); err != nil {
		return token{}, err
	}
	c, err := p.br.ReadByte()
	if err == io.EOF {
		return token{kind: tEOF}, nil
	}
	if err != nil {
		return token{}, err
	}
	p.eofMark = false
	switch c {
	case '/':
		return p.name()
	case '(':
		return token{kind: tString}, p.literalString()
	case '<':
		if next, err := p.br.Peek(1); err == nil && next[0] == '<' {
			_, _ = p.br.ReadByte()
			return token{kind: tDictOpen}, nil
		}
		return token{kind: tString}, p.hexString()
	case '>':
		if next, err := p.br.Peek(1); err == nil && next[0] == '>' {
			_, _ = p.br.ReadByte()
			return token{kind: tDictClose}, nil
		}
		return token{}, malformed("stray >")
	case '[':
		return token{kind: tArrOpen}, nil
	case ']':
		return token{kind: tArrClose}, nil
	case ')', '{', '}':
		return token{}, malformed("unexpected delimiter")
	}
	return p.regular(c)
}

func (p *pdfParser) name() (token, error) {
	var b []byte
	for {
		c, err := p.br.ReadByte()
		if err == io.EOF {
			break
		}
		if err != nil {
			return token{}, err
		}
		if !isRegular(c) {
			_ = p.br.UnreadByte()
			break
		}
		if c == '#' {
			if h, err := p.br.Peek(2); err == nil {
				hi, ok1 := unhex(h[0])
				lo, ok2 := unhex(h[1])
				if ok1 && ok2 {
					_, _ = p.br.Discard(2)
					c = hi<<4 | lo
				}
			}
		}
		if len(b) >= maxToken {
			return token{}, malformed("name too long")
		}
		b = append(b, c)
	}
	s := string(b)
	if why, bad := activeNames[s]; bad {
		return token{}, fmt.Errorf("%w: %s", ErrUnsafe, why)
	}
	return token{kind: tName, s: s}, nil
}

func (p *pdfParser) literalString() error {
	depth := 1
	for {
		c, err := p.br.ReadByte()
		if err == io.EOF {
			return malformed("unterminated string")
		}
		if err != nil {
			return err
		}
		switch c {
		case '\\':
			if _, err := p.br.ReadByte(); err == io.EOF {
				return malformed("unterminated string")
			} else if err != nil {
				return err
			}
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return nil
			}
		}
	}
}

func (p *pdfParser) hexString() error {
	for {
		c, err := p.br.ReadByte()
		if err == io.EOF {
			return malformed("unterminated hex string")
		}
		if err != nil {
			return err
		}
		if c == '>' {
			return nil
		}
		if _, ok := unhex(c); !ok && !isSpace(c) {
			return malformed("bad hex string")
		}
	}
}

// regular reads a number or keyword starting with c.
func (p *pdfParser) regular(c byte) (token, error) {
	b := []byte{c}
	for {
		c, err := p.br.ReadByte()
		if err == io.EOF {
			break
		}
		if err != nil {
			return token{}, err
		}
		if !isRegular(c) {
			_ = p.br.UnreadByte()
			break
		}
		if len(b) >= maxToken {
			return token{}, malformed("token too long")
		}
		b = append(b, c)
	}
	if n, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		return token{kind: tInt, n: n}, nil
	}
	if isReal(b) {
		return token{kind: tReal}, nil
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return token{}, malformed("bad token")
		}
	}
	return token{kind: tKeyword, s: string(b)}, nil
}

// isReal reports whether b is a PDF real (or an integer too large for
// int64): a sign, digits and at most one period, with a digit somewhere.
func isReal(b []byte) bool {
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		b = b[1:]
	}
	digits, dots := 0, 0
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}
