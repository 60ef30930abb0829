package jenkins_test

import (
	"encoding/xml"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cccp-project/cccp/internal/backend/jenkins"
	"github.com/cccp-project/cccp/internal/backend/jenkins/jenkinstest"
)

// The job in deploy/jenkins declares exactly the parameters the tester
// sends, in both of its forms, and archives the file the tester reads.
func TestDeployedJobMatchesTheTester(t *testing.T) {
	j := jenkinstest.New(t)
	tr, _ := newTester(t, j)
	if _, err := tr.StartTest(ctx(t), spec()); err != nil {
		t.Fatal(err)
	}
	var sent []string
	for k := range j.Form(7) {
		sent = append(sent, k)
	}
	slices.Sort(sent)

	jf, err := os.ReadFile("../../../deploy/jenkins/Jenkinsfile")
	if err != nil {
		t.Fatal(err)
	}
	var declared []string
	for _, m := range regexp.MustCompile(`string\(name: '([A-Z_]+)'`).FindAllStringSubmatch(string(jf), -1) {
		declared = append(declared, m[1])
	}
	slices.Sort(declared)
	if !slices.Equal(declared, sent) {
		t.Errorf("Jenkinsfile declares %q, the tester sends %q", declared, sent)
	}
	if !strings.Contains(string(jf), "archiveArtifacts(artifacts: '"+jenkins.ResultsArtifact+"'") {
		t.Errorf("Jenkinsfile does not archive %s", jenkins.ResultsArtifact)
	}
	// Parameters reach the shell only as environment variables: no sh
	// script in a Groovy-interpolated (double-quoted) string.
	if regexp.MustCompile(`sh\([^)]*script: *"`).Match(jf) || strings.Contains(string(jf), `"""`) {
		t.Errorf("Jenkinsfile interpolates into a shell script")
	}

	cx, err := os.ReadFile("../../../deploy/jenkins/config.xml")
	if err != nil {
		t.Fatal(err)
	}
	var job struct {
		Params []string `xml:"properties>hudson.model.ParametersDefinitionProperty>parameterDefinitions>hudson.model.StringParameterDefinition>name"`
		Script string   `xml:"definition>scriptPath"`
	}
	if err := xml.Unmarshal(cx, &job); err != nil {
		t.Fatal(err)
	}
	slices.Sort(job.Params)
	if !slices.Equal(job.Params, sent) {
		t.Errorf("config.xml declares %q, the tester sends %q", job.Params, sent)
	}
	if job.Script != "deploy/jenkins/Jenkinsfile" {
		t.Errorf("config.xml loads %q", job.Script)
	}
}
