{{- define "kuberelay.fullname" -}}
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

{{- define "kuberelay.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kuberelay.labels" -}}
app.kubernetes.io/name: {{ include "kuberelay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- /* Selector labels of one component: include "kuberelay.selectorLabels" (list . "relay") */ -}}
{{- define "kuberelay.selectorLabels" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ include "kuberelay.name" $ }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "kuberelay.operatorServiceAccount" -}}
{{- default (printf "%s-operator" (include "kuberelay.fullname" .)) .Values.operator.serviceAccount.name -}}
{{- end -}}

{{- define "kuberelay.relayServiceAccount" -}}
{{- default (printf "%s-relay" (include "kuberelay.fullname" .)) .Values.relay.serviceAccount.name -}}
{{- end -}}

{{- define "kuberelay.watchNamespaces" -}}
{{- if .Values.operator.watchNamespaces -}}
{{- join "," .Values.operator.watchNamespaces -}}
{{- else -}}
{{- .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{- define "kuberelay.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- /* "true" when the relay keeps its data in embedded PGlite (no external database). */ -}}
{{- define "kuberelay.embeddedDatabase" -}}
{{- if not .Values.database.external.existingSecret -}}true{{- end -}}
{{- end -}}

{{- /* "true" when the chart runs its bundled Redis: enabled, and no other Redis given. */ -}}
{{- define "kuberelay.bundledRedis" -}}
{{- if and .Values.redis.bundled.enabled (not .Values.redis.url) (not .Values.redis.existingSecret) -}}true{{- end -}}
{{- end -}}

{{- /* "true" when the relay has a Redis (external or bundled). */ -}}
{{- define "kuberelay.hasRedis" -}}
{{- if or .Values.redis.url .Values.redis.existingSecret (include "kuberelay.bundledRedis" .) -}}true{{- end -}}
{{- end -}}

{{- define "kuberelay.adminSecretName" -}}
{{- default (printf "%s-admin" (include "kuberelay.fullname" .)) .Values.relay.adminToken.existingSecret -}}
{{- end -}}

{{- /* The REDIS_URL env entry (or nothing without Redis). */ -}}
{{- define "kuberelay.redisEnv" -}}
{{- if .Values.redis.existingSecret }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret }}
      key: {{ .Values.redis.existingSecretKey }}
{{- else if .Values.redis.url }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "kuberelay.fullname" . }}-redis-url
      key: redis-url
{{- else if include "kuberelay.bundledRedis" . }}
- name: REDIS_URL
  value: {{ printf "redis://%s-redis:6379" (include "kuberelay.fullname" .) | quote }}
{{- end }}
{{- end -}}

{{- define "kuberelay.databaseEnv" -}}
{{- if .Values.database.external.existingSecret }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.external.existingSecret }}
      key: {{ .Values.database.external.existingSecretKey }}
{{- end }}
{{- end -}}

{{- /* Pod-level security context shared by every kuberelay pod (restricted Pod Security Standard). */ -}}
{{- define "kuberelay.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext -}}
{{- end -}}

{{- define "kuberelay.containerSecurityContext" -}}
{{- toYaml .Values.containerSecurityContext -}}
{{- end -}}
