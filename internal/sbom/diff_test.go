package sbom

import (
	"reflect"
	"testing"
)

func TestPackages(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want []Package
	}{
		{"spdx", `{"spdxVersion":"SPDX-2.3","packages":[
			{"SPDXID":"SPDXRef-DocumentRoot-Image-x","name":"127.0.0.1/demo/x","versionInfo":"sha256:ab","primaryPackagePurpose":"CONTAINER"},
			{"SPDXID":"SPDXRef-Package-binary-busybox","name":"busybox","versionInfo":"1.35.0","externalRefs":[{"referenceType":"purl","referenceLocator":"pkg:generic/busybox@1.35.0"}]},
			{"SPDXID":"SPDXRef-Package-apk-musl","name":"musl","versionInfo":"1.2.4","externalRefs":[{"referenceType":"purl","referenceLocator":"pkg:apk/alpine/musl@1.2.4"}]}]}`,
			[]Package{{"musl", "1.2.4", "apk"}, {"busybox", "1.35.0", "generic"}}},
		{"cyclonedx", `{"bomFormat":"CycloneDX","components":[
			{"type":"library","name":"musl","version":"1.2.4","purl":"pkg:apk/alpine/musl@1.2.4"},
			{"type":"operating-system","name":"alpine","version":"3.19"},
			{"type":"file","name":"/bin/sh"}]}`,
			[]Package{{"musl", "1.2.4", "apk"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Packages([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Packages = %+v, want %+v", got, tc.want)
			}
		})
	}
	if _, err := Packages([]byte(`{"hello":1}`)); err == nil {
		t.Error("a document that is neither format was read")
	}
}

func TestCompare(t *testing.T) {
	p := func(name, v string) Package { return Package{Name: name, Version: v, Type: "deb"} }
	for _, tc := range []struct {
		name     string
		old, new []Package
		want     Diff
	}{
		{"nothing changed", []Package{p("a", "1")}, []Package{p("a", "1")}, Diff{}},
		{"added and removed", []Package{p("a", "1"), p("b", "1")}, []Package{p("b", "1"), p("c", "2")},
			Diff{Added: []Package{p("c", "2")}, Removed: []Package{p("a", "1")}}},
		{"upgraded", []Package{p("openssl", "3.0.1")}, []Package{p("openssl", "3.0.2")},
			Diff{Upgraded: []Change{{Name: "openssl", Type: "deb", From: "3.0.1", To: "3.0.2"}}}},
		{"same name, other type is another package", []Package{p("zlib", "1")}, []Package{{Name: "zlib", Version: "1", Type: "apk"}},
			Diff{Added: []Package{{Name: "zlib", Version: "1", Type: "apk"}}, Removed: []Package{p("zlib", "1")}}},
		{"two copies, one changes", []Package{p("lib", "1"), p("lib", "2")}, []Package{p("lib", "3"), p("lib", "1")},
			Diff{Added: []Package{p("lib", "3")}, Removed: []Package{p("lib", "2")}}},
		{"order does not matter", []Package{p("lib", "2"), p("lib", "1")}, []Package{p("lib", "1"), p("lib", "2")}, Diff{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Compare(tc.old, tc.new)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Compare =\n%+v\nwant\n%+v", got, tc.want)
			}
			if got.Empty() != tc.want.Empty() {
				t.Errorf("Empty = %v", got.Empty())
			}
		})
	}
}
