{{/* The chart's name, or nameOverride. */}}
{{- define "cccp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The full name of every object: fullnameOverride, or RELEASE-cccp (just RELEASE when it already contains the chart's name). */}}
{{- define "cccp.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "cccp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cccp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "cccp.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "cccp.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "cccp.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "cccp.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the CCCP_* variables and the GitHub App key: existingSecret, or the one this chart makes. */}}
{{- define "cccp.secretName" -}}
{{- default (include "cccp.fullname" .) .Values.existingSecret -}}
{{- end -}}

{{/* "true" when a stage runs on the local backend (buildah or podman in cccp's own pod), which needs a privileged pod. */}}
{{- define "cccp.local" -}}
{{- $p := .Values.config.pipeline | default dict -}}
{{- $build := (($p.build | default dict).backend | default "local") -}}
{{- $test := (($p.test | default dict).backend | default "local") -}}
{{- if or (eq $build "local") (eq $test "local") -}}true{{- end -}}
{{- end -}}

{{/* "true" when builds run on OpenShift with the in-cluster service account. */}}
{{- define "cccp.openshiftInCluster" -}}
{{- $p := .Values.config.pipeline | default dict -}}
{{- $b := $p.build | default dict -}}
{{- if eq ($b.backend | default "local") "openshift" -}}
{{- if not (($b.openshift | default dict).kubeconfig) -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{/* The namespace the OpenShift build backend works in. */}}
{{- define "cccp.buildNamespace" -}}
{{- $b := (.Values.config.pipeline | default dict).build | default dict -}}
{{- ($b.openshift | default dict).namespace | default .Release.Namespace -}}
{{- end -}}
