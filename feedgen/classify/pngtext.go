package classify

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
)

// Generator fingerprints for text metadata (PNG text chunks, EXIF
// UserComment/ImageDescription/Make/Model, JPEG COM, XMP exif:UserComment).
//
// Everything here is matched STRUCTURALLY: the right key plus a parsed
// format (an A1111 "Steps: N, Sampler: …" line, a ComfyUI graph whose nodes
// have class_type, a JSON object with steps/sampler/seed). A substring
// search for "Stable Diffusion" is exactly what decoys fool: captions about
// AI, a camera photo whose description mentions a model, a "parameters"
// chunk holding unrelated text.

const genWeight = 5 // log-odds of a structurally matched generator record

func genEvidence(signal, loc, ex string) Evidence {
	return Evidence{Signal: signal, Class: ClassAIGenerated, Weight: genWeight,
		Tier: TierDeterministic, Locator: loc, Excerpt: excerpt(ex)}
}

// textFieldEvidence fingerprints a set of fields from one blob.
func textFieldEvidence(fields []TextField) []Evidence {
	var out []Evidence
	byKey := map[string]string{}
	for _, f := range fields {
		if _, ok := byKey[strings.ToLower(f.Key)]; !ok {
			byKey[strings.ToLower(f.Key)] = f.Value
		}
	}
	novelAI := false
	if sw, ok := byKey["software"]; ok && strings.EqualFold(strings.TrimSpace(sw), "NovelAI") {
		novelAI = true
	}
	for _, f := range fields {
		v := strings.TrimSpace(capString(f.Value, maxTextBytes))
		if v == "" {
			continue
		}
		switch strings.ToLower(f.Key) {
		case "parameters":
			if ex, ok := a1111Params(v); ok {
				out = append(out, genEvidence("gen.a1111", f.Locator, ex))
			} else if m, ok := jsonObject(v); ok {
				switch {
				case isObject(m["sui_image_params"]):
					out = append(out, genEvidence("gen.swarmui", f.Locator, "sui_image_params"))
				case fooocusJSON(m, byKey["fooocus_scheme"]):
					// Fooocus writes its settings as JSON into "parameters"
					// (with fooocus_scheme=fooocus beside it).
					out = append(out, genEvidence("gen.fooocus", f.Locator, fooocusSummary(m)))
				case sdJSON(m):
					out = append(out, genEvidence("gen.sdjson", f.Locator, sdSummary(m)))
				}
			}
		case "usercomment", "comment", "description", "imagedescription":
			if ex, ok := a1111Params(v); ok {
				out = append(out, genEvidence("gen.a1111", f.Locator, ex))
				continue
			}
			if ex, ok := midjourneyDescription(v); ok && strings.EqualFold(f.Key, "description") {
				out = append(out, genEvidence("gen.midjourney", f.Locator, ex))
				continue
			}
			if m, ok := jsonObject(v); ok {
				switch {
				case comfyGraph(m) != "":
					// ComfyUI API graph in EXIF UserComment (image-saver
					// nodes), bare or wrapped as {"prompt": {...}}.
					out = append(out, genEvidence("gen.comfyui", f.Locator, comfyGraph(m)))
				case novelAI && strings.EqualFold(f.Key, "comment") && sdJSON(m):
					out = append(out, genEvidence("gen.novelai", f.Locator, "Software=NovelAI; "+sdSummary(m)))
				case isObject(m["sui_image_params"]):
					out = append(out, genEvidence("gen.swarmui", f.Locator, "sui_image_params"))
				case sdJSON(m):
					out = append(out, genEvidence("gen.sdjson", f.Locator, sdSummary(m)))
				}
			} else if ex, ok := comfyKeyedGraph(v); ok {
				out = append(out, genEvidence("gen.comfyui", f.Locator, ex))
			}
		case "make", "model":
			if ex, ok := comfyKeyedGraph(v); ok {
				out = append(out, genEvidence("gen.comfyui", f.Locator, ex))
			}
		case "prompt":
			if ex, ok := comfyPrompt(v); ok {
				out = append(out, genEvidence("gen.comfyui", f.Locator, ex))
			}
		case "workflow":
			if ex, ok := comfyWorkflow(v); ok {
				out = append(out, genEvidence("gen.comfyui", f.Locator, ex))
			}
		case "invokeai_metadata":
			if m, ok := jsonObject(v); ok && has(m, "seed") && has(m, "steps") && (has(m, "positive_prompt") || has(m, "generation_mode")) {
				out = append(out, genEvidence("gen.invokeai", f.Locator, asString(m["positive_prompt"])))
			}
		case "sd-metadata":
			if m, ok := jsonObject(v); ok {
				if img, ok := m["image"].(map[string]any); ok && sdJSON(img) {
					out = append(out, genEvidence("gen.invokeai", f.Locator, sdSummary(img)))
				}
			}
		case "dream":
			if ex, ok := dreamLine(v); ok {
				out = append(out, genEvidence("gen.invokeai", f.Locator, ex))
			}
		case "software":
			if ev, ok := generatorNameEvidence("png.software", f.Locator, v); ok {
				out = append(out, ev)
			}
		}
	}
	if ex, ok := easyDiffusionKeys(byKey); ok {
		loc := ""
		for _, f := range fields {
			if strings.EqualFold(f.Key, "num_inference_steps") {
				loc = f.Locator
			}
		}
		out = append(out, genEvidence("gen.easydiffusion", loc, ex))
	}
	return out
}

// a1111Params recognises AUTOMATIC1111/Forge generation parameters:
//
//	<prompt>
//	Negative prompt: <text>            (optional)
//	Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, ...
//
// It requires a line that parses entirely as "Key: value" pairs, starting
// with Steps: <integer>, and containing Sampler plus CFG scale or Seed.
func a1111Params(v string) (string, bool) {
	lines := strings.Split(v, "\n")
	for i := len(lines) - 1; i >= 0 && i >= len(lines)-64; i-- {
		line := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(line, "Steps: ") {
			continue
		}
		kv, ok := parseKVLine(line)
		if !ok {
			continue
		}
		n, err := strconv.Atoi(kv["Steps"])
		if err != nil || n < 1 || n > 10000 {
			continue
		}
		if kv["Sampler"] == "" || (kv["CFG scale"] == "" && kv["Seed"] == "") {
			continue
		}
		prompt := strings.Join(lines[:i], "\n")
		if j := strings.Index(prompt, "Negative prompt:"); j >= 0 {
			prompt = prompt[:j]
		}
		return "Steps: " + kv["Steps"] + ", Sampler: " + kv["Sampler"] + "; prompt: " + strings.TrimSpace(prompt), true
	}
	return "", false
}

// parseKVLine splits `Key: value, Key2: "quoted, value", Key3: {json}, …`
// at top-level commas: commas inside double quotes (with backslash
// escapes) or inside {…}/[…] do not split, so A1111's trailing
// `Hashes: {"model": "…", "lora:name": "…"}` stays one value whose JSON
// keys may contain ':'. Every part must be "Key: value" with a short key.
func parseKVLine(line string) (map[string]string, bool) {
	kv := map[string]string{}
	var parts []string
	inQuote, esc, depth, start := false, false, 0, 0
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case esc:
			esc = false
		case inQuote && c == '\\':
			esc = true
		case c == '"':
			inQuote = !inQuote
		case inQuote:
		case c == '{' || c == '[':
			depth++
			if depth > 32 {
				return nil, false
			}
		case c == '}' || c == ']':
			depth--
			if depth < 0 {
				return nil, false
			}
		case c == ',' && depth == 0:
			parts = append(parts, line[start:i])
			start = i + 1
		}
	}
	parts = append(parts, line[start:])
	if inQuote || depth != 0 || len(parts) < 3 || len(parts) > 256 {
		return nil, false
	}
	for _, p := range parts {
		k, val, ok := strings.Cut(strings.TrimSpace(p), ": ")
		if !ok || k == "" || len(k) > 64 || strings.ContainsAny(k, "\n:{}[]\"") {
			return nil, false
		}
		kv[k] = strings.TrimSpace(val)
	}
	return kv, true
}

// jsonObject parses v as one JSON object.
func jsonObject(v string) (map[string]any, bool) {
	v = strings.TrimSpace(v)
	if len(v) < 2 || v[0] != '{' || len(v) > maxTextBytes {
		return nil, false
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(v), &m); err != nil {
		return nil, false
	}
	return m, true
}

func isObject(v any) bool { _, ok := v.(map[string]any); return ok }

func has(m map[string]any, k string) bool { _, ok := m[k]; return ok }

// number reports whether v is a JSON number or a numeric string.
func number(v any) bool {
	switch v := v.(type) {
	case float64, int64:
		return true
	case string:
		_, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		return err == nil
	}
	return false
}

// sdJSON recognises a diffusion settings object (NovelAI Comment, Fooocus,
// Easy Diffusion and Draw Things JSON, InvokeAI sd-metadata image): a step
// count, a sampler or guidance scale, and a seed.
func sdJSON(m map[string]any) bool {
	steps := number(m["steps"]) || number(m["num_inference_steps"])
	sampler := asString(m["sampler"]) != "" || asString(m["sampler_name"]) != "" || asString(m["scheduler"]) != "" ||
		number(m["scale"]) || number(m["cfg_scale"]) || number(m["guidance_scale"]) || number(m["cfg"])
	seed := number(m["seed"])
	return steps && sampler && seed
}

func sdSummary(m map[string]any) string {
	var parts []string
	for _, k := range []string{"steps", "num_inference_steps", "sampler", "sampler_name", "seed"} {
		if v, ok := m[k]; ok {
			b, _ := json.Marshal(v)
			parts = append(parts, k+"="+capString(string(b), 40))
		}
	}
	return strings.Join(parts, " ")
}

// comfyPrompt recognises a ComfyUI API graph: an object of nodes, each
// {"class_type": "...", "inputs": {...}}.
func comfyPrompt(v string) (string, bool) {
	m, ok := jsonObject(v)
	if !ok {
		return "", false
	}
	ex := comfyNodes(m)
	return ex, ex != ""
}

// comfyNodes summarises the class_types of an API graph's nodes, or "".
func comfyNodes(m map[string]any) string {
	var types []string
	for _, n := range m {
		node, ok := n.(map[string]any)
		if !ok {
			continue
		}
		if ct := asString(node["class_type"]); ct != "" && isObject(node["inputs"]) {
			types = append(types, ct)
		}
	}
	if len(types) == 0 {
		return ""
	}
	sort.Strings(types)
	return "class_type: " + strings.Join(types, ", ")
}

// comfyGraph recognises an API graph held in one JSON value: the graph
// itself, or an object whose "prompt" is the graph (as an object or as a
// JSON string).
func comfyGraph(m map[string]any) string {
	if ex := comfyNodes(m); ex != "" {
		return ex
	}
	switch p := m["prompt"].(type) {
	case map[string]any:
		return comfyNodes(p)
	case string:
		if inner, ok := jsonObject(p); ok {
			return comfyNodes(inner)
		}
	}
	return ""
}

// fooocusJSON recognises Fooocus settings JSON: the "fooocus" scheme chunk
// beside it, or a "version" naming Fooocus, plus a diffusion record
// (steps, sampler or guidance, seed) and Fooocus's own keys.
func fooocusJSON(m map[string]any, scheme string) bool {
	named := strings.EqualFold(strings.TrimSpace(scheme), "fooocus") ||
		strings.HasPrefix(strings.ToLower(asString(m["version"])), "fooocus")
	own := has(m, "base_model") || has(m, "full_prompt") || has(m, "adm_guidance") || has(m, "performance")
	return named && own && sdJSON(m)
}

func fooocusSummary(m map[string]any) string {
	ex := sdSummary(m)
	if v := asString(m["version"]); v != "" {
		ex = v + "; " + ex
	}
	return ex
}

// comfyWorkflow recognises a ComfyUI UI graph: {"nodes": [{"id": n, "type": "..."}, ...]}.
func comfyWorkflow(v string) (string, bool) {
	m, ok := jsonObject(v)
	if !ok {
		return "", false
	}
	var types []string
	for _, n := range asArray(m["nodes"]) {
		node, ok := n.(map[string]any)
		if !ok {
			continue
		}
		if t := asString(node["type"]); t != "" && number(node["id"]) {
			types = append(types, t)
		}
	}
	if len(types) == 0 {
		return "", false
	}
	sort.Strings(types)
	return "workflow nodes: " + strings.Join(types, ", "), true
}

// comfyKeyed reports whether v looks like ComfyUI's EXIF "key:{json}".
func comfyKeyed(v string) bool {
	return strings.HasPrefix(v, "prompt:{") || strings.HasPrefix(v, "workflow:{")
}

func comfyKeyedGraph(v string) (string, bool) {
	if rest, ok := strings.CutPrefix(v, "prompt:"); ok {
		return comfyPrompt(rest)
	}
	if rest, ok := strings.CutPrefix(v, "workflow:"); ok {
		return comfyWorkflow(rest)
	}
	return "", false
}

// midjourneyDescription recognises "<prompt> --ar 3:2 --v 6 Job ID: <uuid>".
func midjourneyDescription(v string) (string, bool) {
	i := strings.LastIndex(v, "Job ID: ")
	if i < 0 || !isUUID(strings.TrimSpace(v[i+len("Job ID: "):])) {
		return "", false
	}
	return strings.TrimSpace(v[:i]), true
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// dreamLine recognises legacy InvokeAI "Dream" text, a quoted prompt then
// dream.py command-line switches:
//
//	"prompt [negative]" -s 50 -S 42 -W 512 -H 768 -C 5 -A k_lms -G 0.9 -cf 0.75 -U 4 0.95
//
// A switch is '-' plus one to three letters and takes zero or more
// values (-U takes two, -F none), so the tail is read as switches each
// followed by its non-switch tokens. Steps (-s) and seed (-S) must be
// integers; every token must belong to a switch.
func dreamLine(v string) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	end := strings.LastIndexByte(v, '"')
	if end <= 0 {
		return "", false
	}
	toks := strings.Fields(v[end+1:])
	if len(toks) < 4 || len(toks) > 256 {
		return "", false
	}
	flags := map[string][]string{}
	cur := ""
	for _, t := range toks {
		if dreamSwitch(t) {
			cur = t
			if _, dup := flags[cur]; dup {
				return "", false
			}
			flags[cur] = nil
			continue
		}
		if cur == "" || len(flags[cur]) >= 4 {
			return "", false
		}
		flags[cur] = append(flags[cur], t)
	}
	for _, f := range []string{"-s", "-S"} {
		if len(flags[f]) != 1 {
			return "", false
		}
		if _, err := strconv.Atoi(flags[f][0]); err != nil {
			return "", false
		}
	}
	return v[1:end], true
}

// dreamSwitch reports whether t is a dream.py switch such as -s, -S, -cf
// (not a negative number such as -1).
func dreamSwitch(t string) bool {
	if len(t) < 2 || len(t) > 4 || t[0] != '-' {
		return false
	}
	for i := 1; i < len(t); i++ {
		c := t[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_') {
			return false
		}
	}
	return true
}

// easyDiffusionKeys recognises Easy Diffusion's one-chunk-per-setting PNGs.
func easyDiffusionKeys(byKey map[string]string) (string, bool) {
	_, err := strconv.Atoi(strings.TrimSpace(byKey["num_inference_steps"]))
	if err != nil {
		return "", false
	}
	n := 0
	for _, k := range []string{"guidance_scale", "sampler_name", "seed", "use_stable_diffusion_model", "negative_prompt"} {
		if byKey[k] != "" {
			n++
		}
	}
	if n < 2 {
		return "", false
	}
	return "num_inference_steps=" + byKey["num_inference_steps"] + " sampler_name=" + byKey["sampler_name"], true
}
