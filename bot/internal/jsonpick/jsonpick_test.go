package jsonpick

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

func TestPick(t *testing.T) {
	p := New("ref", "repository", "head_commit", "pull_request")
	tests := []struct {
		name, in, want string
		err            bool
	}{
		{name: "keeps named members in order", in: `{"ref":"x","commits":[{"id":"1"}],"repository":{"a":[1,{"b":"}"}]}}`,
			want: `{"ref":"x","repository":{"a":[1,{"b":"}"}]}}`},
		{name: "empty object", in: ` { } `, want: `{}`},
		{name: "nothing kept", in: `{"commits":[]}`, want: `{}`},
		{name: "folded names", in: `{"REF":1,"Head-Commit":2,"headcommit":3,"pullRequest":4,"other":5}`,
			want: `{"REF":1,"Head-Commit":2,"headcommit":3,"pullRequest":4}`},
		{name: "escaped and non-ASCII names kept", in: `{"r\u0065f":1,"réf":2,"x":3}`, want: `{"r\u0065f":1,"réf":2}`},
		{name: "duplicates kept in order", in: `{"ref":"a","x":0,"ref":"b"}`, want: `{"ref":"a","ref":"b"}`},
		{name: "escaped quotes and backslashes", in: `{"x":"a\"}\\","ref":"b\\\"c"}`, want: `{"ref":"b\\\"c"}`},
		{name: "literals", in: "{\"x\":true,\n\t\"ref\" : -1.5e3 ,\"y\":null}", want: `{"ref":-1.5e3}`},
		{name: "not an object", in: `[1]`, err: true},
		{name: "empty", in: ``, err: true},
		{name: "data after", in: `{"ref":1} {}`, err: true},
		{name: "unterminated string", in: `{"ref":"abc}`, err: true},
		{name: "unbalanced", in: `{"x":[1}, "ref":1}`, err: true},
		{name: "missing value", in: `{"x":,"ref":1}`, err: true},
		{name: "missing colon", in: `{"x" 1}`, err: true},
		{name: "trailing comma", in: `{"x":1,}`, err: true},
		{name: "unterminated object", in: `{"x":1`, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := p.Pick(nil, []byte(tt.in))
			if tt.err {
				if !errors.Is(err, ErrSyntax) {
					t.Fatalf("Pick(%s) = %s, %v; want ErrSyntax", tt.in, got, err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("Pick(%s) = %s, %v; want %s", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestPickDeepNesting(t *testing.T) {
	in := []byte(`{"x":` + string(repeat('[', maxDepth+1)) + string(repeat(']', maxDepth+1)) + `}`)
	if _, err := New("ref").Pick(nil, in); !errors.Is(err, ErrSyntax) {
		t.Fatalf("Pick of %d nested arrays: %v; want ErrSyntax", maxDepth+1, err)
	}
}

func repeat(c byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return b
}

func TestForStruct(t *testing.T) {
	type inner struct {
		Embedded string `json:"embedded_name"`
	}
	type v struct {
		inner
		Plain   string
		Tagged  int      `json:"tagged,omitempty"`
		Skipped string   `json:"-"`
		Dash    string   `json:"-,"`
		Nested  struct{} `json:"nested"`
		private int
	}
	p := ForStruct(&v{})
	got := map[string]bool{}
	for n := range p.names {
		got[n] = true
	}
	want := map[string]bool{"EMBEDDEDNAME": true, "PLAIN": true, "TAGGED": true, "": true, "NESTED": true}
	// The name "-" folds to "" (json v2 ignores '-' when folding).
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ForStruct names = %v; want %v", got, want)
	}
}

func TestForStructCutsNestedObjects(t *testing.T) {
	type node struct {
		Name string `json:"name"`
		Next *node  `json:"next"` // recursive: kept whole where it recurs
	}
	type custom struct{ X string }
	type withInline struct {
		A    string         `json:"a"`
		Rest map[string]any `json:",inline"`
	}
	type v struct {
		Repo struct {
			ID    int `json:"id"`
			Owner struct {
				Login string `json:"login"`
			} `json:"owner"`
		} `json:"repo"`
		When   time.Time         `json:"when"`
		Raw    jsontext.Value    `json:"raw"`
		Node   node              `json:"node"`
		Inline *withInline       `json:"inline"`
		Custom *customJSON       `json:"custom"`
		List   []struct{ A int } `json:"list"`
		_      custom
	}
	in := `{"repo":{"id":1,"url":"u","owner":{"login":"l","x":[1]}},"when":{"a":1},"raw":{"a":1},` +
		`"node":{"name":"n","z":1,"next":{"name":"m","z":2}},"inline":{"a":"1","b":2},"custom":{"q":1},"list":[{"A":1,"B":2}],"other":1}`
	want := `{"repo":{"id":1,"owner":{"login":"l"}},"when":{"a":1},"raw":{"a":1},` +
		`"node":{"name":"n","next":{"name":"m","z":2}},"inline":{"a":"1","b":2},"custom":{"q":1},"list":[{"A":1,"B":2}]}`
	got, err := ForStruct(v{}).Pick(nil, []byte(in))
	if err != nil || string(got) != want {
		t.Fatalf("Pick =\n%s, %v\nwant\n%s", got, err, want)
	}
}

// customJSON reads itself: Pick keeps its objects whole.
type customJSON struct{ all map[string]any }

func (c *customJSON) UnmarshalJSON(b []byte) error { return jsonv2.Unmarshal(b, &c.all) }

// sample stands for a forge's payload: the kinds of fields those hold.
type sample struct {
	Action     string `json:"action"`
	Ref        string `json:"ref"`
	Deleted    bool   `json:"deleted"`
	Repository struct {
		ID       int64  `json:"id"`
		FullName string `json:"full_name"`
		CloneURL string `json:"clone_url"`
	} `json:"repository"`
	PullRequest *struct {
		Number int `json:"number"`
		Head   struct {
			SHA string `json:"sha"`
		} `json:"head"`
	} `json:"pull_request"`
	Issue *struct {
		PullRequest jsontext.Value `json:"pull_request"`
	} `json:"issue"`
	ObjectAttributes jsontext.Value    `json:"object_attributes"`
	Labels           []string          `json:"labels"`
	Extra            map[string]string `json:"extra"`
}

var options = jsonv2.JoinOptions(jsonv2.MatchCaseInsensitiveNames(true),
	jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))

// FuzzPickMatchesDecoder: whenever the decoder reads a body, it reads the
// same from the picked body.
func FuzzPickMatchesDecoder(f *testing.F) {
	for _, dir := range []string{"github", "gitlab", "gitea"} {
		files, _ := filepath.Glob(filepath.Join("..", "..", "..", "testdata", dir, "*.json"))
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte(`{"ref":"a","REF":"b","re_f":"c","labels":["x"],"labels":null,"extra":{"k":"v"}}`))
	f.Add([]byte(`{"r\u0065f":"x","repository":{"id":1,"id":2},"issue":{"pull_request":{"a":[]}}}`))
	f.Add([]byte(`{"x":"\"","ref":"\\"}`))
	p := ForStruct(sample{})
	f.Fuzz(func(t *testing.T, body []byte) {
		var whole sample
		wholeErr := jsonv2.Unmarshal(body, &whole, options)
		picked, err := p.Pick(nil, body)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("Pick error %v does not wrap ErrSyntax", err)
			}
			if wholeErr == nil {
				t.Fatalf("Pick refused %q, which the decoder reads: %v", body, err)
			}
			return
		}
		var cut sample
		cutErr := jsonv2.Unmarshal(picked, &cut, options)
		if wholeErr != nil {
			return // a malformed dropped member: documented
		}
		if cutErr != nil {
			t.Fatalf("picked %q of %q: decoder says %v", picked, body, cutErr)
		}
		if !reflect.DeepEqual(whole, cut) {
			t.Fatalf("picked body reads differently:\nwhole %+v\ncut   %+v\nbody %q", whole, cut, body)
		}
	})
}

func BenchmarkPickPush25k(b *testing.B) {
	body, err := os.ReadFile("/work/shared/bench/push25k.json")
	if err != nil {
		b.Skip(err)
	}
	p := New("ref", "before", "after", "deleted", "repository", "sender", "installation", "action")
	var buf []byte
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if buf, err = p.Pick(buf[:0], body); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDecodeReusesNothingDecoded: what a decoder keeps from a cut body
// (strings, raw values) stays intact when the buffer is reused.
func TestDecodeReusesNothingDecoded(t *testing.T) {
	p := ForStruct(sample{})
	body := []byte(`{"commits":[1,2,3],"action":"opened","issue":{"pull_request":{"url":"u"}},"object_attributes":{"a":"b"},"labels":["l"]}`)
	// A sync.Pool may drop what is put in it (a quarter of Puts under
	// -race, everything at two GCs) or keep it where this goroutine, moved
	// to another P, cannot get it; so the check is tried until a buffer
	// Decode returned is got and scribbled over, and fails only if none
	// ever is.
	scribbled := 0
	for range 50 {
		var got sample
		if err := p.Decode(body, func(b []byte) error { return jsonv2.Unmarshal(b, &got, options) }); err != nil {
			t.Fatal(err)
		}
		for range 4 { // scribble over whatever buffers the pool holds
			if bp, _ := p.bufs.Get().(*[]byte); bp != nil {
				scribbled++
				b := (*bp)[:cap(*bp)]
				for i := range b {
					b[i] = 'X'
				}
			}
		}
		if got.Action != "opened" || string(got.Issue.PullRequest) != `{"url":"u"}` ||
			string(got.ObjectAttributes) != `{"a":"b"}` || len(got.Labels) != 1 || got.Labels[0] != "l" {
			t.Fatalf("decoded values changed with the buffer: %+v", got)
		}
		if scribbled > 0 {
			return
		}
	}
	t.Fatal("Decode returned no buffer to its pool in 50 calls")
}

func TestDecodeFallsBackToBody(t *testing.T) {
	p := New("ref")
	var seen string
	err := p.Decode([]byte(`[1]`), func(b []byte) error { seen = string(b); return errors.New("decoder's own error") })
	if seen != `[1]` || err == nil || err.Error() != "decoder's own error" {
		t.Fatalf("Decode of a non-object gave the decoder %q and returned %v; want the body and the decoder's error", seen, err)
	}
}

// selfEmbedding embeds itself through a pointer, as json allows.
type selfEmbedding struct {
	*selfEmbedding
	X int `json:"x"`
}

type quotedName struct {
	A string `json:"'a,b'"` // json v2: the name is "a,b"
}

type unicodeName struct {
	K string `json:"K"` // KELVIN SIGN: folds to "k" in json v2
}

// TestForStructKeepsWholeWhatItCannotMirror: types whose member names
// Pick cannot match the decoder's way are kept whole (every member), and
// a type that embeds itself does not recurse for ever.
func TestForStructKeepsWholeWhatItCannotMirror(t *testing.T) {
	in := `{"x":1,"a,b":"v","k":"w","other":2}`
	for _, v := range []any{selfEmbedding{}, quotedName{}, unicodeName{}} {
		got, err := ForStruct(v).Pick(nil, []byte(in))
		if err != nil || string(got) != in {
			t.Errorf("ForStruct(%T).Pick = %s, %v; want the object whole", v, got, err)
		}
	}
}
