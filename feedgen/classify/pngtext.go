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
			} else if m, ok := jsonObject(v); ok && isObject(m["sui_image_params"]) {
				out = append(out, genEvidence("gen.swarmui", f.Locator, "sui_image_params"))
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

// parseKVLine splits `Key: value, Key2: "quoted, value", …` at top-level
// commas. Every part must be "Key: value" with a short key.
func parseKVLine(line string) (map[string]string, bool) {
	kv := map[string]string{}
	var parts []string
	inQuote, start := false, 0
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '"':
			inQuote = !inQuote
		case ',':
			if !inQuote {
				parts = append(parts, line[start:i])
				start = i + 1
			}
		}
	}
	parts = append(parts, line[start:])
	if inQuote || len(parts) < 3 || len(parts) > 256 {
		return nil, false
	}
	for _, p := range parts {
		k, val, ok := strings.Cut(strings.TrimSpace(p), ": ")
		if !ok || k == "" || len(k) > 64 || strings.ContainsAny(k, "\n:") {
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
		return "", false
	}
	sort.Strings(types)
	return "class_type: " + strings.Join(types, ", "), true
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

// dreamLine recognises legacy InvokeAI "Dream" text:
// "prompt" -s 50 -S 42 -W 512 -H 512 -C 7.5 -A k_lms
func dreamLine(v string) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	end := strings.LastIndexByte(v, '"')
	if end <= 0 {
		return "", false
	}
	toks := strings.Fields(v[end+1:])
	if len(toks) < 4 || len(toks)%2 != 0 {
		return "", false
	}
	flags := map[string]string{}
	for i := 0; i < len(toks); i += 2 {
		if len(toks[i]) != 2 || toks[i][0] != '-' {
			return "", false
		}
		flags[toks[i]] = toks[i+1]
	}
	if _, err := strconv.Atoi(flags["-s"]); err != nil {
		return "", false
	}
	if _, err := strconv.Atoi(flags["-S"]); err != nil {
		return "", false
	}
	return v[1:end], true
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
