package buildah

import (
	"os"
	"path/filepath"
	"testing"
)

func TestStepLine(t *testing.T) {
	const multi = "ARG X=1\n" + // 1
		"FROM scratch AS one\n" + // 2: stage 1 step 1
		"COPY busybox /bin/busybox\n" + // 3: stage 1 step 2
		"# a comment\n" + // 4
		"RUN echo a && \\\n" + // 5: stage 1 step 3
		"    echo b\n" + // 6
		"\n" + // 7
		"FROM scratch\n" + // 8: stage 2 step 1
		"COPY --from=one /bin/busybox /bin/busybox\n" + // 9: stage 2 step 2
		"RUN false\n" // 10: stage 2 step 3
	tests := []struct {
		name        string
		stage, step int
		want        int
	}{
		{name: "FROM of the first stage", stage: 1, step: 1, want: 2},
		{name: "continued RUN starts on its first line", stage: 1, step: 3, want: 5},
		{name: "second stage FROM", stage: 2, step: 1, want: 8},
		{name: "second stage last step", stage: 2, step: 3, want: 10},
		{name: "step past the end", stage: 2, step: 4, want: 0},
		{name: "unknown stage", stage: 3, step: 1, want: 0},
		{name: "no step", stage: 0, step: 0, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := stepLine([]byte(multi), tt.stage, tt.step); got != tt.want {
				t.Errorf("stepLine(%d, %d) = %d, want %d", tt.stage, tt.step, got, tt.want)
			}
		})
	}
}

func TestBuildErrorFromRecordedOutput(t *testing.T) {
	df, err := os.ReadFile(filepath.Join("testdata", "multistage-fail.Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(filepath.Join("testdata", "multistage-fail.log"))
	if err != nil {
		t.Fatal(err)
	}
	w := newWatcher(nil)
	if _, err := w.Write(out); err != nil {
		t.Fatal(err)
	}
	w.flush()
	e := newBuildError("app/Dockerfile", df, w)
	if e.Stage != 2 || e.Step != 3 || e.Line != 7 {
		t.Errorf("stage/step/line = %d/%d/%d, want 2/3/7", e.Stage, e.Step, e.Line)
	}
	want := `app/Dockerfile:7: RUN ["/bin/busybox","sh","-c","echo hi; exit 3"]: exit status 3`
	if e.Error() != want {
		t.Errorf("Error() = %q\nwant     %q", e.Error(), want)
	}
}

func TestRedact(t *testing.T) {
	secrets := nonEmpty("pw", "user:pw", "dXNlcjpwdw==")
	got := redact("auth user:pw failed; pw again; dXNlcjpwdw==", secrets)
	if want := "auth *** failed; *** again; ***"; got != want {
		t.Errorf("redact = %q, want %q", got, want)
	}
}
