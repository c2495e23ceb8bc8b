{{/*
Names. The StatefulSet's name is cut to 52 characters: its pods add "-0" and the
controller-revision-hash label adds a hash, and labels stop at 63.
*/}}
{{- define "forwarder.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "forwarder.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "forwarder.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "forwarder.selectorLabels" -}}
app.kubernetes.io/name: {{ include "forwarder.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "forwarder.labels" -}}
helm.sh/chart: {{ include "forwarder.chart" . }}
{{ include "forwarder.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: forwarder
app.kubernetes.io/part-of: siem
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "forwarder.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "forwarder.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "forwarder.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* Fixed paths inside the container (the image's layout). */}}
{{- define "forwarder.stateDir" -}}/var/lib/forwarder{{- end -}}
{{- define "forwarder.configDir" -}}/etc/forwarder{{- end -}}
{{- define "forwarder.secretsDir" -}}/run/secrets{{- end -}}

{{/*
Seconds (a float) of a forwarder duration: a number of seconds, or "<number><unit>" with
unit ms, s, m, h or d (the same grammar as forwarder/config/durations.py).
*/}}
{{- define "forwarder.durationSeconds" -}}
{{- $value := . -}}
{{- if kindIs "string" $value -}}
{{- $text := trim $value -}}
{{- if not (regexMatch "^[0-9]+(\\.[0-9]+)?\\s*(ms|s|m|h|d)?$" $text) -}}
{{- fail (printf "invalid duration %q: use e.g. 30s, 5m, 2h or 1d" $value) -}}
{{- end -}}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" $text | float64 -}}
{{- $unit := regexFind "(ms|s|m|h|d)$" $text -}}
{{- $factors := dict "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0 "d" 86400.0 -}}
{{- mulf $number (get $factors (default "s" $unit)) -}}
{{- else -}}
{{- $value | float64 -}}
{{- end -}}
{{- end -}}

{{- define "forwarder.shutdownGraceSeconds" -}}
{{- $grace := dig "pipeline" "shutdown_grace" "30s" (.Values.config | default dict) -}}
{{- include "forwarder.durationSeconds" $grace | float64 | ceil | int -}}
{{- end -}}

{{/*
The pod's terminationGracePeriodSeconds: the daemon drains for at most
pipeline.shutdown_grace after SIGTERM, then closes its sinks and commits; the kubelet must
not SIGKILL it before, so the period is the grace plus a margin (or an explicit value,
which must be longer than the grace).
*/}}
{{- define "forwarder.terminationGracePeriodSeconds" -}}
{{- $grace := include "forwarder.shutdownGraceSeconds" . | int -}}
{{- if .Values.terminationGracePeriodSeconds -}}
{{- $explicit := .Values.terminationGracePeriodSeconds | int -}}
{{- if le $explicit $grace -}}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be longer than config.pipeline.shutdown_grace (%ds), or the kubelet kills the daemon mid-drain" $explicit $grace) -}}
{{- end -}}
{{- $explicit -}}
{{- else -}}
{{- add $grace (.Values.terminationGracePeriodMarginSeconds | int) -}}
{{- end -}}
{{- end -}}

{{/*
Checks a file path referenced from the config (a *_file key, a file sink path): it must be
in a mounted Secret (/run/secrets/<secretMounts[].name>/...), a mounted ConfigMap
(/etc/forwarder/<configMapMounts[].name>/...), on the state volume or under an
extraVolumeMounts path. Argument: dict "key" "path" "root" $.
*/}}
{{- define "forwarder.checkMountedFile" -}}
{{- $root := .root -}}
{{- $path := .path -}}
{{- $parts := splitList "/" $path -}}
{{- $ok := false -}}
{{- $secretNames := list -}}
{{- range $root.Values.secretMounts -}}{{- $secretNames = append $secretNames .name -}}{{- end -}}
{{- $configMapNames := list -}}
{{- range $root.Values.configMapMounts -}}{{- $configMapNames = append $configMapNames .name -}}{{- end -}}
{{- if and (hasPrefix (printf "%s/" (include "forwarder.secretsDir" $root)) $path) (ge (len $parts) 5) -}}
{{- $ok = has (index $parts 3) $secretNames -}}
{{- else if and (hasPrefix (printf "%s/" (include "forwarder.configDir" $root)) $path) (ge (len $parts) 5) -}}
{{- $ok = has (index $parts 3) $configMapNames -}}
{{- else if hasPrefix (printf "%s/" (include "forwarder.stateDir" $root)) $path -}}
{{- $ok = true -}}
{{- else -}}
{{- range $root.Values.extraVolumeMounts -}}
{{- if hasPrefix (printf "%s/" (trimSuffix "/" .mountPath)) $path -}}{{- $ok = true -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- if not $ok -}}
{{- fail (printf "%s: %s is not in a mounted Secret (/run/secrets/<secretMounts name>/<key>), ConfigMap (/etc/forwarder/<configMapMounts name>/<key>), the state volume (/var/lib/forwarder/) or an extraVolumeMounts path" .key $path) -}}
{{- end -}}
{{- end -}}

{{/* Checks one source or sink entry: every *_file key, one level of nesting deep. */}}
{{- define "forwarder.checkEntry" -}}
{{- $root := .root -}}
{{- $where := .where -}}
{{- range $key, $value := .entry -}}
{{- if and (kindIs "string" $value) (hasSuffix "_file" $key) -}}
{{- include "forwarder.checkMountedFile" (dict "key" (printf "%s.%s" $where $key) "path" $value "root" $root) -}}
{{- else if kindIs "map" $value -}}
{{- range $inner, $innerValue := $value -}}
{{- if and (kindIs "string" $innerValue) (hasSuffix "_file" $inner) -}}
{{- include "forwarder.checkMountedFile" (dict "key" (printf "%s.%s.%s" $where $key $inner) "path" $innerValue "root" $root) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The daemon's config.yaml, rendered from .Values.config. sources and sinks are lists in the
values (Helm replaces lists instead of merging them, so a values file's sinks replace the
defaults) and become the maps keyed by id that the daemon reads. state_dir and metrics are
set by the chart: the state volume and the port the probes and Prometheus use.
*/}}
{{- define "forwarder.config" -}}
{{- $root := . -}}
{{- $config := .Values.config -}}
{{- $sources := dict -}}
{{- range $index, $source := $config.sources -}}
{{- $where := printf "config.sources[%d] (%s)" $index $source.id -}}
{{- if hasKey $sources $source.id -}}
{{- fail (printf "config.sources: the id %q is used twice" $source.id) -}}
{{- end -}}
{{- include "forwarder.checkEntry" (dict "entry" $source "where" $where "root" $root) -}}
{{- if eq $source.type "google_calendar" -}}
{{- $settle := include "forwarder.durationSeconds" (default "3h" $source.settle_window) | float64 -}}
{{- if lt $settle 7200.0 -}}
{{- fail (printf "%s.settle_window: must cover at least 2h: Google reports Calendar events up to a couple of hours late" $where) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $sources $source.id (omit $source "id") -}}
{{- end -}}
{{- $sinks := dict -}}
{{- range $index, $sink := $config.sinks -}}
{{- $where := printf "config.sinks[%d] (%s)" $index $sink.id -}}
{{- if hasKey $sinks $sink.id -}}
{{- fail (printf "config.sinks: the id %q is used twice" $sink.id) -}}
{{- end -}}
{{- include "forwarder.checkEntry" (dict "entry" $sink "where" $where "root" $root) -}}
{{- if eq $sink.type "file" -}}
{{- include "forwarder.checkMountedFile" (dict "key" (printf "%s.path" $where) "path" $sink.path "root" $root) -}}
{{- end -}}
{{- range $name, $_ := ($sink.headers | default dict) -}}
{{- if has (lower $name) (list "authorization" "proxy-authorization" "cookie" "x-api-key") -}}
{{- fail (printf "%s.headers.%s: credentials do not belong in the values (they would land in a ConfigMap): use auth with a *_file from secretMounts" $where $name) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $sinks $sink.id (omit $sink "id") -}}
{{- end -}}
{{- $document := dict "state_dir" (include "forwarder.stateDir" .) "sources" $sources "sinks" $sinks -}}
{{- range $section := list "pipeline" "dead_letter" "log" "simulators" -}}
{{- if hasKey $config $section -}}
{{- $_ := set $document $section (get $config $section) -}}
{{- end -}}
{{- end -}}
{{- with $config.dead_letter -}}
{{- with .path -}}
{{- include "forwarder.checkMountedFile" (dict "key" "config.dead_letter.path" "path" (printf "%s/dead-letter.ndjson" (trimSuffix "/" .)) "root" $root) -}}
{{- end -}}
{{- end -}}
{{- $listen := printf "%s:%d" .Values.metrics.listenAddress (.Values.metrics.port | int) -}}
{{- if contains ":" .Values.metrics.listenAddress -}}
{{- $listen = printf "[%s]:%d" .Values.metrics.listenAddress (.Values.metrics.port | int) -}}
{{- end -}}
{{- $_ := set $document "metrics" (dict "enabled" true "listen" $listen) -}}
# Rendered by the forwarder Helm chart {{ include "forwarder.chart" . }} from .Values.config.
# Secrets are not in this file: *_file keys point at Secrets mounted under /run/secrets/.
{{ toYaml $document }}
{{- end -}}

{{/*
Egress ports. A JSON list of {"port", "protocol"} objects for one sink (dict "sink" ...):
Kafka: the bootstrap servers' ports (9092 when none is given); HTTP: the URL's port (443 or
80 by scheme); syslog: its port (514, or 6514 for tls; UDP for transport udp). file and
stdout need none.
*/}}
{{- define "forwarder.sinkPorts" -}}
{{- $sink := .sink -}}
{{- $ports := list -}}
{{- if eq $sink.type "kafka" -}}
{{- range $server := $sink.bootstrap_servers -}}
{{- $port := regexFind "[0-9]+$" (regexFind ":[0-9]+$" $server) | default "9092" -}}
{{- $ports = append $ports (dict "port" ($port | int) "protocol" "TCP") -}}
{{- end -}}
{{- else if eq $sink.type "http" -}}
{{- $port := include "forwarder.urlPort" $sink.url -}}
{{- $ports = append $ports (dict "port" ($port | int) "protocol" "TCP") -}}
{{- else if eq $sink.type "syslog" -}}
{{- $transport := default "tcp" $sink.transport -}}
{{- $default := ternary 6514 514 (eq $transport "tls") -}}
{{- $port := default $default $sink.port -}}
{{- $ports = append $ports (dict "port" ($port | int) "protocol" (ternary "UDP" "TCP" (eq $transport "udp"))) -}}
{{- end -}}
{{- toJson (uniq $ports) -}}
{{- end -}}

{{/* The port of a URL: explicit, or 443 (https) / 80 (http). */}}
{{- define "forwarder.urlPort" -}}
{{- $url := urlParse . -}}
{{- $explicit := regexFind "[0-9]+$" (regexFind ":[0-9]+$" $url.host) -}}
{{- if $explicit -}}{{- $explicit -}}{{- else if eq $url.scheme "http" -}}80{{- else -}}443{{- end -}}
{{- end -}}

{{/* The source APIs' ports (base_url, token_url; 443 for the real APIs), as a JSON list. */}}
{{- define "forwarder.sourcePorts" -}}
{{- $ports := list -}}
{{- range $source := .Values.config.sources -}}
{{- $ports = append $ports (include "forwarder.urlPort" (default "https://api.example.com" $source.base_url) | int) -}}
{{- if $source.token_url -}}
{{- $ports = append $ports (include "forwarder.urlPort" $source.token_url | int) -}}
{{- else if eq $source.type "google_calendar" -}}
{{- /* the key file's token_uri: https://oauth2.googleapis.com/token */ -}}
{{- $ports = append $ports 443 -}}
{{- end -}}
{{- end -}}
{{- if eq (len $ports) 0 -}}{{- $ports = list 443 -}}{{- end -}}
{{- toJson (uniq $ports) -}}
{{- end -}}
