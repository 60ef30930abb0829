package forgetest

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
)

// Comment is an issue comment as GitHub and Gitea return it.
type Comment struct {
	ID   int64  `json:"id"`
	Body string `json:"body"`
	User struct {
		Login string `json:"login"`
	} `json:"user"`
}

// IssueComments keeps the comments of every issue (and pull request) of a
// double and serves the routes GitHub and Gitea share for them: list with
// a Link to the next page, create, and edit by comment ID. Set the
// exported fields before the first request.
type IssueComments struct {
	// PageSize is how many comments one page lists.
	PageSize int
	// SizeParam is the query parameter carrying the page size in the
	// next-page Link: "per_page" on GitHub, "limit" on Gitea.
	SizeParam string
	// Bot is the login of the comments created through the API.
	Bot string
	// IDBase is where comment IDs start; far from issue numbers, so a
	// client that mixes them up fails.
	IDBase int64
	// NotFound is the message of the 404 for an unknown comment ID.
	NotFound string

	mu      sync.Mutex
	nextID  int64
	byIssue map[int][]*Comment
}

// Mount registers the comment routes under repo, the double's
// "/api/vN/repos/{owner}/{repo}" pattern prefix.
func (c *IssueComments) Mount(mux *http.ServeMux, repo string) {
	mux.HandleFunc("GET "+repo+"/issues/{n}/comments", c.list)
	mux.HandleFunc("POST "+repo+"/issues/{n}/comments", c.create)
	mux.HandleFunc("PATCH "+repo+"/issues/comments/{id}", c.edit)
}

// Comments returns copies of the comments on issue n, oldest first.
func (c *IssueComments) Comments(n int) []Comment {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Comment
	for _, cm := range c.byIssue[n] {
		out = append(out, *cm)
	}
	return out
}

// AddComment stores a comment written by someone else.
func (c *IssueComments) AddComment(n int, user, body string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.add(n, user, body)
}

// add stores a comment; c.mu is held.
func (c *IssueComments) add(n int, user, body string) *Comment {
	if c.nextID < c.IDBase {
		c.nextID = c.IDBase
	}
	c.nextID++
	cm := &Comment{ID: c.nextID, Body: body}
	cm.User.Login = user
	if c.byIssue == nil {
		c.byIssue = map[int][]*Comment{}
	}
	c.byIssue[n] = append(c.byIssue[n], cm)
	return cm
}

func (c *IssueComments) list(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.PathValue("n"))
	c.mu.Lock()
	defer c.mu.Unlock()
	out, page, more := Paginate(r, c.byIssue[n], c.PageSize)
	if more {
		w.Header().Set("Link", fmt.Sprintf(`<http://%s%s?page=%d&%s=%d>; rel="next"`, r.Host, r.URL.Path, page+1, c.SizeParam, c.PageSize))
	}
	WriteJSON(w, http.StatusOK, out)
}

func (c *IssueComments) create(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.PathValue("n"))
	m := Decode(r)
	c.mu.Lock()
	defer c.mu.Unlock()
	WriteJSON(w, http.StatusCreated, c.add(n, c.Bot, Str(m, "body")))
}

func (c *IssueComments) edit(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	m := Decode(r)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cs := range c.byIssue {
		for _, cm := range cs {
			if cm.ID == id {
				cm.Body = Str(m, "body")
				WriteJSON(w, http.StatusOK, cm)
				return
			}
		}
	}
	WriteError(w, http.StatusNotFound, c.NotFound)
}
