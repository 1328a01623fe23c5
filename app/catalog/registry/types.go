package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
)

// ServerList is the body of GET /v0.1/servers.
type ServerList struct {
	Servers  []Entry  `json:"servers"`
	Metadata Metadata `json:"metadata"`
}

// Metadata is a list's paging information.
type Metadata struct {
	// NextCursor is opaque; empty when there are no more pages.
	NextCursor string `json:"nextCursor,omitempty"`
	Count      int    `json:"count,omitempty"`
}

// Entry is one ServerResponse: a server.json plus the registry's metadata.
type Entry struct {
	Server ServerJSON `json:"server"`
	Meta   EntryMeta  `json:"_meta"`
}

// EntryMeta is the response-level _meta (not the publisher's server._meta).
type EntryMeta struct {
	Official *Official `json:"io.modelcontextprotocol.registry/official,omitempty"`
}

// Official is the registry's own view of an entry.
type Official struct {
	Status          string `json:"status,omitempty"` // active | deprecated | deleted
	StatusMessage   string `json:"statusMessage,omitempty"`
	StatusChangedAt string `json:"statusChangedAt,omitempty"`
	PublishedAt     string `json:"publishedAt,omitempty"`
	UpdatedAt       string `json:"updatedAt,omitempty"`
	IsLatest        bool   `json:"isLatest"`
}

// ServerJSON is the part of server.json Keyport uses.
type ServerJSON struct {
	Schema      string      `json:"$schema,omitempty"`
	Name        string      `json:"name"` // reverse-DNS, one "/"
	Title       string      `json:"title,omitempty"`
	Description string      `json:"description"`
	Version     string      `json:"version"`
	WebsiteURL  string      `json:"websiteUrl,omitempty"`
	Repository  *Repository `json:"repository,omitempty"`
	Remotes     []Remote    `json:"remotes,omitempty"`
	Packages    []Package   `json:"packages,omitempty"`
}

// Repository is where the server's source lives. A registry may send an
// empty object, null or nothing for "none".
type Repository struct {
	URL    string `json:"url,omitempty"`
	Source string `json:"source,omitempty"`
}

// Package is a locally run distribution of the server (not proxied by
// Keyport; kept to explain why an entry cannot be imported).
type Package struct {
	RegistryType string `json:"registryType"`
	Identifier   string `json:"identifier"`
	Transport    struct {
		Type string `json:"type"`
	} `json:"transport"`
}

// Remote is a hosted endpoint of the server.
type Remote struct {
	Type      string           `json:"type"` // streamable-http | sse
	URL       string           `json:"url"`  // may hold {variable} placeholders
	Headers   []KeyValueInput  `json:"headers,omitempty"`
	Variables map[string]Input `json:"variables,omitempty"`
}

// Input describes a value the user may have to provide.
type Input struct {
	Description string   `json:"description,omitempty"`
	IsRequired  bool     `json:"isRequired,omitempty"`
	Format      string   `json:"format,omitempty"`
	Value       string   `json:"value,omitempty"` // fixed value (may hold {variable}s)
	IsSecret    bool     `json:"isSecret,omitempty"`
	Default     string   `json:"default,omitempty"`
	Placeholder string   `json:"placeholder,omitempty"`
	Choices     []string `json:"choices,omitempty"`
}

// KeyValueInput is a header: a name, an Input, and the variables its Value
// template uses.
type KeyValueInput struct {
	Name string `json:"name"`
	Input
	Variables map[string]Input `json:"variables,omitempty"`
}

// TransportStreamableHTTP is the remote type Keyport proxies.
const TransportStreamableHTTP = "streamable-http"

// StreamableRemotes are the entry's streamable-http remotes.
func (e *Entry) StreamableRemotes() []Remote {
	var out []Remote
	for _, r := range e.Server.Remotes {
		if r.Type == TransportStreamableHTTP {
			out = append(out, r)
		}
	}
	return out
}

// LatestActive reports whether the entry is the latest version and active.
// Entries without the official metadata (some private registries) count
// as latest and active.
func (e *Entry) LatestActive() bool {
	o := e.Meta.Official
	return o == nil || (o.IsLatest && (o.Status == "" || o.Status == "active"))
}

// maxBody bounds a registry response.
const maxBody = 16 << 20

// DecodeList decodes a GET /v0.1/servers body. Errors say what is wrong
// with the shape ("servers: want a list, got an object").
func DecodeList(data []byte) (*ServerList, error) {
	var l ServerList
	if err := decode(data, &l); err != nil {
		return nil, err
	}
	if l.Servers == nil && !bytes.Contains(data, []byte(`"servers"`)) {
		return nil, errors.New(`unexpected JSON shape: no "servers" list (is this an MCP Registry v0.1 endpoint?)`)
	}
	for i := range l.Servers {
		if err := l.Servers[i].check(); err != nil {
			return nil, fmt.Errorf("servers[%d]: %w", i, err)
		}
	}
	return &l, nil
}

// DecodeEntry decodes a GET /v0.1/servers/{name}/versions/{version} body.
func DecodeEntry(data []byte) (*Entry, error) {
	var e Entry
	if err := decode(data, &e); err != nil {
		return nil, err
	}
	if err := e.check(); err != nil {
		return nil, err
	}
	return &e, nil
}

func (e *Entry) check() error {
	if e.Server.Name == "" {
		return errors.New(`unexpected JSON shape: an entry has no "server.name"`)
	}
	return nil
}

func decode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return describeJSONError(err)
	}
	if dec.More() {
		return errors.New("invalid JSON: trailing data after the response")
	}
	return nil
}

func describeJSONError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "the response"
		}
		return fmt.Errorf("unexpected JSON shape: %s: want %s, got %s", field, jsonKind(te.Type), te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("invalid JSON at byte %d: %v", se.Offset, err)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("invalid JSON: the response ends too early (truncated)")
	}
	return fmt.Errorf("invalid JSON: %v", err)
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Float64:
		return "a number"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return t.String()
}
