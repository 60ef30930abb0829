// Package regconf writes the registries.conf that buildah and podman get
// through CONTAINERS_REGISTRIES_CONF: TLS is verified for every registry
// except the few named (the embedded registry on loopback), instead of a
// global --tls-verify=false.
package regconf

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
)

// System is the machine's registries.conf.
const System = "/etc/containers/registries.conf"

// Base is the registries.conf that cccp's own builds and pulls start from:
// $CONTAINERS_REGISTRIES_CONF when the operator set it for cccp (a mirror
// of docker.io where no public registry can be reached, say), else System.
// getenv is os.Getenv outside tests.
func Base(getenv func(string) string) string {
	if p := getenv("CONTAINERS_REGISTRIES_CONF"); p != "" {
		return p
	}
	return System
}

// Generate returns base's content (the machine's registries.conf; a missing
// file is empty) followed by one [[registry]] table per insecure host with
// `insecure = true`. A host base already names is left as base has it.
func Generate(base string, insecure []string) ([]byte, error) {
	data, err := os.ReadFile(base)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("registries.conf: %w", err)
	}
	var b bytes.Buffer
	b.Write(data)
	if len(data) > 0 && data[len(data)-1] != '\n' {
		b.WriteByte('\n')
	}
	b.WriteString("\n# cccp: TLS off only for these registries (cccp's own, on loopback).\n")
	hosts := slices.Clone(insecure)
	slices.Sort(hosts)
	for _, h := range slices.Compact(hosts) {
		if h == "" || bytes.Contains(data, []byte(strconv.Quote(h))) {
			continue
		}
		fmt.Fprintf(&b, "[[registry]]\nlocation = %s\ninsecure = true\n\n", strconv.Quote(h))
	}
	return b.Bytes(), nil
}

// Write writes Generate's result to path.
func Write(path, base string, insecure []string) error {
	data, err := Generate(base, insecure)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write registries.conf: %w", err)
	}
	return nil
}
