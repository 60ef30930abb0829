// Package gitlabtest is a recording double of the parts of the GitLab REST
// API (v4) that cccp calls, mounted under /api/v4/. It keeps just enough
// state (commit statuses, notes, members, branches, merge requests) for the
// adapter's calls to be checked against it.
package gitlabtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/cccp-project/cccp/bot/forgetest"
)

// Call is one request the double received; Auth is its Private-Token
// header and Path keeps the %2F of URL-encoded project paths.
type Call = forgetest.Call

// Status is a commit status as posted.
type Status struct {
	SHA, State, Name, TargetURL, Description string
}

// Note is a merge-request note.
type Note struct {
	ID     int64  `json:"id"`
	Body   string `json:"body"`
	System bool   `json:"system"`
	Author struct {
		Username string `json:"username"`
	} `json:"author"`
}

// Server is the double.
type Server struct {
	*forgetest.Recorder
	forgetest.Files

	// PageSize is how many notes one page lists (default 20).
	PageSize int
	// Projects maps a project ID to its path (group/app), for the project
	// look-up of a fork merge request's source.
	Projects map[int64]string
	// Bot is the username of the token's user (GET /user), the author of
	// the notes created through the API (default cccp-bot).
	Bot string
	// Access maps username to access level (10 guest ... 50 owner) in every
	// project; users absent here exist but are not members. "ghost" does not exist.
	Access map[string]int

	mu       sync.Mutex
	nextID   int64
	statuses []Status
	notes    map[int][]*Note // by MR iid
	branches map[string]bool
	mrs      []map[string]any
}

// New starts a double; it is closed when the test ends.
func New(t testing.TB) *Server {
	s := &Server{PageSize: 20, Access: map[string]int{}, Projects: map[int64]string{}, Bot: "cccp-bot", nextID: 500, notes: map[int][]*Note{},
		branches: map[string]bool{"main": true}}
	mux := http.NewServeMux()
	const p = "/api/v4/projects/{id}"
	mux.HandleFunc("POST "+p+"/statuses/{sha}", s.setStatus)
	mux.HandleFunc("GET "+p+"/merge_requests/{iid}/notes", s.listNotes)
	mux.HandleFunc("POST "+p+"/merge_requests/{iid}/notes", s.createNote)
	mux.HandleFunc("PUT "+p+"/merge_requests/{iid}/notes/{note}", s.updateNote)
	mux.HandleFunc("GET /api/v4/users", s.users)
	mux.HandleFunc("GET /api/v4/user", s.currentUser)
	mux.HandleFunc("GET "+p, s.project)
	mux.HandleFunc("GET "+p+"/members/all/{uid}", s.member)
	mux.HandleFunc("GET "+p+"/merge_requests", s.listMRs)
	mux.HandleFunc("POST "+p+"/merge_requests", s.createMR)
	mux.HandleFunc("GET "+p+"/merge_requests/{iid}", s.getMR)
	mux.HandleFunc("GET "+p+"/repository/branches/{branch}", s.getBranch)
	mux.HandleFunc("POST "+p+"/repository/commits", s.createCommit)
	s.Recorder = forgetest.NewRecorder(t, "Private-Token", mux)
	return s
}

// APIURL is the base URL to give the client: <server>/api/v4/.
func (s *Server) APIURL() string { return s.URL + "/api/v4/" }

// Statuses returns the commit statuses accepted, in order.
func (s *Server) Statuses() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.statuses)
}

// Notes returns the notes of merge request iid.
func (s *Server) Notes(iid int) []Note {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Note
	for _, n := range s.notes[iid] {
		out = append(out, *n)
	}
	return out
}

// AddNote stores a note written by someone else (or by GitLab, system).
func (s *Server) AddNote(iid int, user, body string, system bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	n := &Note{ID: s.nextID, Body: body, System: system}
	n.Author.Username = user
	s.notes[iid] = append(s.notes[iid], n)
}

func notFound(w http.ResponseWriter, what string) {
	forgetest.WriteError(w, http.StatusNotFound, "404 "+what+" Not Found")
}

func (s *Server) setStatus(w http.ResponseWriter, r *http.Request) {
	m := forgetest.Decode(r)
	st := Status{SHA: r.PathValue("sha"), State: forgetest.Str(m, "state"), Name: forgetest.Str(m, "name"), TargetURL: forgetest.Str(m, "target_url"), Description: forgetest.Str(m, "description")}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.statuses) - 1; i >= 0; i-- {
		if prev := s.statuses[i]; prev.SHA == st.SHA && prev.Name == st.Name {
			if prev.State == st.State {
				// What GitLab answers when the status already has this state.
				forgetest.WriteError(w, http.StatusBadRequest, "Cannot transition status via :run from :running")
				return
			}
			break
		}
	}
	s.statuses = append(s.statuses, st)
	forgetest.WriteJSON(w, http.StatusCreated, map[string]any{"id": len(s.statuses), "sha": st.SHA, "status": st.State, "name": st.Name})
}

func (s *Server) listNotes(w http.ResponseWriter, r *http.Request) {
	iid, _ := strconv.Atoi(r.PathValue("iid"))
	s.mu.Lock()
	defer s.mu.Unlock()
	out, page, more := forgetest.Paginate(r, s.notes[iid], s.PageSize)
	if more {
		w.Header().Set("X-Next-Page", strconv.Itoa(page+1))
	}
	w.Header().Set("X-Page", strconv.Itoa(page))
	forgetest.WriteJSON(w, http.StatusOK, out)
}

func (s *Server) createNote(w http.ResponseWriter, r *http.Request) {
	iid, _ := strconv.Atoi(r.PathValue("iid"))
	m := forgetest.Decode(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	n := &Note{ID: s.nextID, Body: forgetest.Str(m, "body")}
	n.Author.Username = s.Bot
	s.notes[iid] = append(s.notes[iid], n)
	forgetest.WriteJSON(w, http.StatusCreated, n)
}

func (s *Server) updateNote(w http.ResponseWriter, r *http.Request) {
	iid, _ := strconv.Atoi(r.PathValue("iid"))
	id, _ := strconv.ParseInt(r.PathValue("note"), 10, 64)
	m := forgetest.Decode(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.notes[iid] {
		if n.ID == id {
			n.Body = forgetest.Str(m, "body")
			forgetest.WriteJSON(w, http.StatusOK, n)
			return
		}
	}
	notFound(w, "Note")
}

// userID derives a stable ID from a username.
func userID(name string) int64 {
	var h int64 = 7
	for _, c := range name {
		h = h*31 + int64(c)
	}
	if h < 0 {
		h = -h
	}
	return h%100000 + 1
}

func (s *Server) users(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("username")
	if name == "" || name == "ghost" {
		forgetest.WriteJSON(w, http.StatusOK, []any{})
		return
	}
	forgetest.WriteJSON(w, http.StatusOK, []map[string]any{{"id": userID(name), "username": name}})
}

func (s *Server) member(w http.ResponseWriter, r *http.Request) {
	uid, _ := strconv.ParseInt(r.PathValue("uid"), 10, 64)
	for name, level := range s.Access {
		if userID(name) == uid {
			forgetest.WriteJSON(w, http.StatusOK, map[string]any{"id": uid, "username": name, "access_level": level})
			return
		}
	}
	notFound(w, "Member")
}

func (s *Server) mrURL(r *http.Request, iid int) string {
	return fmt.Sprintf("https://gitlab.example/%s/-/merge_requests/%d", r.PathValue("id"), iid)
}

func (s *Server) listMRs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	for _, mr := range s.mrs {
		if mr["source_branch"] == q.Get("source_branch") && mr["state"] == "opened" {
			out = append(out, mr)
		}
	}
	forgetest.WriteJSON(w, http.StatusOK, out)
}

func (s *Server) createMR(w http.ResponseWriter, r *http.Request) {
	m := forgetest.Decode(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.branches[forgetest.Str(m, "source_branch")] {
		forgetest.WriteError(w, http.StatusBadRequest, "source branch does not exist")
		return
	}
	iid := len(s.mrs) + 1
	mr := map[string]any{"id": 9000 + iid, "iid": iid, "title": forgetest.Str(m, "title"), "description": forgetest.Str(m, "description"),
		"source_branch": forgetest.Str(m, "source_branch"), "target_branch": forgetest.Str(m, "target_branch"), "state": "opened",
		"sha": "5ca1ab1e", "web_url": s.mrURL(r, iid), "source_project_id": 1, "target_project_id": 1,
		"author": map[string]any{"username": "cccp-bot"}}
	s.mrs = append(s.mrs, mr)
	forgetest.WriteJSON(w, http.StatusCreated, mr)
}

func (s *Server) getMR(w http.ResponseWriter, r *http.Request) {
	iid, _ := strconv.Atoi(r.PathValue("iid"))
	s.mu.Lock()
	defer s.mu.Unlock()
	if iid < 1 || iid > len(s.mrs) {
		notFound(w, "Merge Request")
		return
	}
	forgetest.WriteJSON(w, http.StatusOK, s.mrs[iid-1])
}

func (s *Server) getBranch(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ok := s.branches[r.PathValue("branch")]
	s.mu.Unlock()
	if !ok {
		notFound(w, "Branch")
		return
	}
	forgetest.WriteJSON(w, http.StatusOK, map[string]any{"name": r.PathValue("branch")})
}

func (s *Server) createCommit(w http.ResponseWriter, r *http.Request) {
	var m struct {
		Branch      string `json:"branch"`
		StartBranch string `json:"start_branch"`
		Actions     []struct {
			Action   string `json:"action"`
			FilePath string `json:"file_path"`
			Content  string `json:"content"`
		} `json:"actions"`
	}
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
		forgetest.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.branches[m.Branch] && m.StartBranch != "" {
		forgetest.WriteError(w, http.StatusBadRequest, "A branch called '"+m.Branch+"' already exists.")
		return
	}
	s.branches[m.Branch] = true
	for _, a := range m.Actions {
		s.PutFile(m.Branch, a.FilePath, a.Content)
	}
	forgetest.WriteJSON(w, http.StatusCreated, map[string]any{"id": "c0ffee"})
}

// AddMergeRequest stores a merge request as GitLab's API returns it
// (iid, sha, source_project_id, target_project_id, author...); its iid is
// its position, from 1.
func (s *Server) AddMergeRequest(mr map[string]any) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	iid := len(s.mrs) + 1
	mr["iid"] = iid
	s.mrs = append(s.mrs, mr)
	return iid
}

func (s *Server) currentUser(w http.ResponseWriter, r *http.Request) {
	forgetest.WriteJSON(w, http.StatusOK, map[string]any{"id": userID(s.Bot), "username": s.Bot})
}

func (s *Server) project(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	s.mu.Lock()
	path, ok := s.Projects[id]
	s.mu.Unlock()
	if err != nil || !ok {
		notFound(w, "Project")
		return
	}
	forgetest.WriteJSON(w, http.StatusOK, map[string]any{"id": id, "path_with_namespace": path,
		"http_url_to_repo": "https://gitlab.example/" + path + ".git", "web_url": "https://gitlab.example/" + path})
}
