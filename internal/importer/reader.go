package importer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// readFile streams the resources of one file to emit, which returns false to
// stop. NDJSON is recognized by the .ndjson/.jsonl extension (optionally
// .gz); anything else is one JSON document: a Bundle, whose entries are
// streamed, or a single resource.
func readFile(ctx context.Context, path string, maxLine int, emit func(*item) bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("importer: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	name := strings.ToLower(path)
	if strings.HasSuffix(name, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("importer: %s: not gzip: %w", path, err)
		}
		defer gz.Close()
		r = gz
		name = strings.TrimSuffix(name, ".gz")
	}
	display := filepath.Base(path)
	switch filepath.Ext(name) {
	case ".ndjson", ".jsonl":
		return readNDJSON(ctx, display, r, maxLine, emit)
	default:
		return readDocument(ctx, display, r, maxLine, emit)
	}
}

// readNDJSON emits one item per non-blank line.
func readNDJSON(ctx context.Context, file string, r io.Reader, maxLine int, emit func(*item) bool) error {
	br := bufio.NewReaderSize(r, 1<<20)
	line := 0
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		line++
		buf, tooLong, err := readLine(br, maxLine)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("importer: %s:%d: %w", file, line, err)
		}
		if tooLong {
			if !emit(&item{file: file, line: line, err: fmt.Errorf("line longer than %d bytes", maxLine)}) {
				return nil
			}
		} else if len(bytes.TrimSpace(buf)) > 0 {
			if !emit(&item{file: file, line: line, raw: buf}) {
				return nil
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}

// readLine returns the next line without its newline, as a fresh slice. A
// line over maxLine is consumed and reported as tooLong.
func readLine(br *bufio.Reader, maxLine int) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > maxLine+1 {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		return line, tooLong, err
	}
}

// readDocument streams a Bundle's entries, or emits a single resource.
func readDocument(ctx context.Context, file string, r io.Reader, maxLine int, emit func(*item) bool) error {
	lt := &lineTracker{r: bufio.NewReaderSize(r, 1<<20)}
	dec := json.NewDecoder(lt)
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("importer: %s:%d: not JSON: %w", file, lt.lineAt(dec.InputOffset()), err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("importer: %s:1: expected a JSON object (a Bundle or a resource); use the .ndjson extension for NDJSON", file)
	}
	var (
		resourceType string
		sawEntries   bool
		fields       = map[string]json.RawMessage{}
		size         int
	)
	for dec.More() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		keyTok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("importer: %s:%d: %w", file, lt.lineAt(dec.InputOffset()), err)
		}
		key, _ := keyTok.(string)
		if key == "entry" && resourceType != "" && resourceType != "Bundle" {
			return fmt.Errorf("importer: %s: only a Bundle has entries", file)
		}
		if key == "entry" {
			sawEntries = true
			stop, err := readEntries(ctx, file, dec, lt, emit)
			if err != nil || stop {
				return err
			}
			continue
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("importer: %s:%d: %w", file, lt.lineAt(dec.InputOffset()), err)
		}
		size += len(v)
		if size > maxLine {
			return fmt.Errorf("importer: %s: document larger than %d bytes outside Bundle.entry", file, maxLine)
		}
		if key == "resourceType" {
			_ = json.Unmarshal(v, &resourceType)
		}
		fields[key] = v
	}
	if resourceType == "Bundle" || sawEntries {
		if resourceType != "Bundle" {
			return fmt.Errorf("importer: %s: only a Bundle has entries", file)
		}
		return nil
	}
	// A single resource: reassemble it from its fields.
	raw, err := json.Marshal(fields)
	if err != nil {
		return fmt.Errorf("importer: %s: %w", file, err)
	}
	emit(&item{file: file, line: 1, raw: raw})
	return nil
}

// readEntries streams Bundle.entry[].resource. It returns stop=true when
// emit asked to stop.
func readEntries(ctx context.Context, file string, dec *json.Decoder, lt *lineTracker, emit func(*item) bool) (bool, error) {
	tok, err := dec.Token()
	if err != nil {
		return false, fmt.Errorf("importer: %s:%d: %w", file, lt.lineAt(dec.InputOffset()), err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return false, fmt.Errorf("importer: %s:%d: Bundle.entry must be an array", file, lt.lineAt(dec.InputOffset()))
	}
	for i := 0; dec.More(); i++ {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		line := lt.lineAt(dec.InputOffset())
		var entry struct {
			Resource json.RawMessage `json:"resource"`
		}
		if err := dec.Decode(&entry); err != nil {
			return false, fmt.Errorf("importer: %s:%d: Bundle.entry[%d]: %w", file, line, i, err)
		}
		it := &item{file: file, line: line, raw: entry.Resource}
		if len(entry.Resource) == 0 {
			it.err = fmt.Errorf("Bundle.entry[%d] has no resource", i)
		}
		if !emit(it) {
			return true, nil
		}
	}
	if _, err := dec.Token(); err != nil { // closing ]
		return false, fmt.Errorf("importer: %s: %w", file, err)
	}
	return false, nil
}

// lineTracker remembers the bytes the JSON decoder has read but not yet
// passed, so that a decoder offset can be turned into a line number without
// keeping the whole file.
type lineTracker struct {
	r         io.Reader
	base      int64 // offset of chunks[0]
	baseLines int   // newlines before base
	chunks    [][]byte
}

func (t *lineTracker) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.chunks = append(t.chunks, append([]byte(nil), p[:n]...))
	}
	return n, err
}

// lineAt returns the 1-based line of the first byte at or after off that is
// not whitespace or a comma. Offsets must not decrease between calls.
func (t *lineTracker) lineAt(off int64) int {
	for len(t.chunks) > 0 && t.base+int64(len(t.chunks[0])) <= off {
		t.baseLines += bytes.Count(t.chunks[0], []byte{'\n'})
		t.base += int64(len(t.chunks[0]))
		t.chunks = t.chunks[1:]
	}
	lines := t.baseLines
	rel := off - t.base
	for ci, c := range t.chunks {
		start := int64(0)
		if ci == 0 {
			start = rel
			lines += bytes.Count(c[:rel], []byte{'\n'})
		}
		for i := start; i < int64(len(c)); i++ {
			switch c[i] {
			case '\n':
				lines++
			case ' ', '\t', '\r', ',':
			default:
				return lines + 1
			}
		}
	}
	return lines + 1
}
