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

{{/*
Checks a file that holds a secret (header_files values): it must be in a mounted Secret,
/run/secrets/<secretMounts[].name>/<key>, never a ConfigMap or the state volume.
Argument: dict "key" "path" "root" $.
*/}}
{{- define "forwarder.checkSecretFile" -}}
{{- $parts := splitList "/" .path -}}
{{- $secretNames := list -}}
{{- range .root.Values.secretMounts -}}{{- $secretNames = append $secretNames .name -}}{{- end -}}
{{- $inSecret := and (hasPrefix (printf "%s/" (include "forwarder.secretsDir" .root)) .path) (ge (len $parts) 5) -}}
{{- if not (and $inSecret (has (index $parts 3) $secretNames)) -}}
{{- fail (printf "%s: %s is not in a mounted Secret (/run/secrets/<secretMounts name>/<key>): a credential header's value comes from a Secret only" .key .path) -}}
{{- end -}}
{{- end -}}

{{/*
Header names that suggest a credential (the daemon's CREDENTIAL_HEADER in
forwarder/config/model.py): their values come from header_files, never from the values.
*/}}
{{- define "forwarder.credentialHeader" -}}(?i)key|token|auth|secret|password|cookie{{- end -}}

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
{{- if regexMatch (include "forwarder.credentialHeader" $root) $name -}}
{{- if eq $sink.type "http" -}}
{{- fail (printf "%s.headers.%s: a header whose name suggests a credential (key, token, auth, secret, password, cookie) would land in the ConfigMap: mount its Secret (secretMounts) and set header_files: {%s: /run/secrets/<name>/<key>}" $where $name $name) -}}
{{- else -}}
{{- fail (printf "%s.headers.%s: a header whose name suggests a credential (key, token, auth, secret, password, cookie) would land in the ConfigMap and in every message: remove it" $where $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range $name, $path := ($sink.header_files | default dict) -}}
{{- include "forwarder.checkSecretFile" (dict "key" (printf "%s.header_files.%s" $where $name) "path" $path "root" $root) -}}
{{- end -}}
{{- $_ := set $sinks $sink.id (omit $sink "id") -}}
{{- end -}}
{{- $document := dict "state_dir" (include "forwarder.stateDir" .) "sources" $sources "sinks" $sinks -}}
{{- range $section := list "sources_dir" "pipeline" "dead_letter" "log" "simulators" "google_quota" "reload" -}}
{{- if hasKey $config $section -}}
{{- $_ := set $document $section (get $config $section) -}}
{{- end -}}
{{- end -}}
{{- /* Secrets and ConfigMaps update in the mounted volume, and nobody sends SIGHUP in a
pod: the daemon watches its files and reloads its sources when they change. */ -}}
{{- if not (hasKey $document "reload") -}}
{{- $_ := set $document "reload" (dict "watch_interval" "30s") -}}
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
{{- $metrics := dict "enabled" true "listen" $listen "max_connections" (.Values.metrics.maxConnections | int) "idle_timeout" .Values.metrics.idleTimeout -}}
{{- /* Many tenants (sharded, or sources from a directory): one tenant's failure must not
take the pod out of service; the others' health is in /readyz's warnings and the alerts. */ -}}
{{- $readiness := .Values.metrics.readiness | default "" -}}
{{- if not $readiness -}}
{{- $readiness = ternary "any_source" "every_source" (or .Values.sharding.enabled (hasKey $config "sources_dir")) -}}
{{- end -}}
{{- $_ := set $metrics "readiness" $readiness -}}
{{- /* Beyond loopback on purpose, to the peers of networkPolicy.ingress.from only. */ -}}
{{- $behindPolicy := and .Values.networkPolicy.enabled .Values.networkPolicy.ingress.from (not (has .Values.metrics.listenAddress (list "127.0.0.1" "::1" "localhost"))) -}}
{{- if $behindPolicy -}}
{{- $_ := set $metrics "allow_insecure" true -}}
{{- end -}}
{{- $_ := set $document "metrics" $metrics -}}
{{- /* Each pod runs its share of the sources: the index is its ordinal, from its name. */ -}}
{{- if .Values.sharding.enabled -}}
{{- $_ := set $document "shard" (dict "count" (.Values.replicaCount | int)) -}}
{{- end -}}
# Rendered by the forwarder Helm chart {{ include "forwarder.chart" . }} from .Values.config.
# Secrets are not in this file: *_file and header_files keys point at Secrets mounted
# under /run/secrets/.
{{- if $behindPolicy }}
# metrics.allow_insecure: the listener binds {{ $listen }} so that the kubelet's probes
# and Prometheus reach it; the chart's NetworkPolicy admits only networkPolicy.ingress.from
# to that port (the daemon would otherwise warn that /metrics is served unauthenticated).
{{- end }}
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

{{/* Whether a URL's host is loopback (the demo's embedded simulators: no egress). */}}
{{- define "forwarder.isLoopbackUrl" -}}
{{- $host := (urlParse .).host | replace "[" "" | replace "]" "" -}}
{{- $host = regexReplaceAll ":[0-9]+$" $host "" -}}
{{- if or (eq $host "localhost") (eq $host "::1") (hasPrefix "127." $host) -}}true{{- end -}}
{{- end -}}

{{/*
One source API's egress ports (dict "source" ...), as a JSON list: the ports of its
base_url and token_url (443 for the real APIs; Google's token endpoint, from the key
file's token_uri, is https://oauth2.googleapis.com). Loopback URLs need none.
*/}}
{{- define "forwarder.sourcePorts" -}}
{{- $source := .source -}}
{{- $ports := list -}}
{{- $base := default "https://api.example.com" $source.base_url -}}
{{- if not (include "forwarder.isLoopbackUrl" $base) -}}
{{- $ports = append $ports (include "forwarder.urlPort" $base | int) -}}
{{- end -}}
{{- if $source.token_url -}}
{{- if not (include "forwarder.isLoopbackUrl" $source.token_url) -}}
{{- $ports = append $ports (include "forwarder.urlPort" $source.token_url | int) -}}
{{- end -}}
{{- else if and (eq $source.type "google_calendar") (not (include "forwarder.isLoopbackUrl" $base)) -}}
{{- $ports = append $ports 443 -}}
{{- end -}}
{{- toJson (uniq $ports) -}}
{{- end -}}
