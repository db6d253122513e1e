package classify

import "strings"

// Generator and camera names in free-text software fields (EXIF Software,
// XMP CreatorTool, PNG Software, C2PA claim_generator).

// aiGenerators are products whose only output is generated media. Editors
// that also offer generative features (Photoshop, Lightroom, GIMP) are
// deliberately absent: their name says nothing about a given image.
func aiGenerators() []string {
	return []string{
		"adobe firefly", "automatic1111", "bing image creator", "chatgpt", "comfyui",
		"dall-e", "dall·e", "dalle", "diffusionbee", "draw things", "easy diffusion",
		"firefly", "fooocus", "gpt-4o", "gpt-image", "ideogram", "image creator from designer",
		"imagen", "invokeai", "leonardo.ai",
		// The claim generator of Bing Image Creator and Designer manifests.
		"microsoft responsible ai",
		"microsoft designer", "midjourney", "nightcafe", "niji journey",
		"novelai", "openai", "stable diffusion", "stable-diffusion-webui", "swarmui",
		"titan image generator",
	}
}

// generatorName matches the whole value (or its leading product name
// followed by a version or separator) against aiGenerators. It never
// matches a name in the middle of a sentence.
func generatorName(v string) (string, bool) {
	v = strings.ToLower(strings.TrimSpace(v))
	v = strings.ReplaceAll(v, "_", " ")
	if v == "" || len(v) > 256 {
		return "", false
	}
	for _, name := range aiGenerators() {
		rest, ok := strings.CutPrefix(v, name)
		if !ok {
			continue
		}
		if rest == "" {
			return name, true
		}
		switch rest[0] {
		case ' ', '/', '-', '(', ',', ';', 'v', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			// "Midjourney v6", "DALL-E 3", "ChatGPT/1.0 c2pa-rs/0.33", "NovelAI (web)".
			if rest[0] == ' ' && len(rest) > 1 && !versionish(rest[1:]) {
				continue // "Stable Diffusion is cool" is prose, not a product field
			}
			return name, true
		}
	}
	return "", false
}

// versionish reports whether s starts like a version or tool suffix.
func versionish(s string) bool {
	if s == "" {
		return false
	}
	c := s[0]
	return c >= '0' && c <= '9' || c == 'v' && len(s) > 1 && s[1] >= '0' && s[1] <= '9' || c == '(' || c == '/' ||
		strings.HasPrefix(s, "c2pa") || strings.HasPrefix(s, "xl") || strings.HasPrefix(s, "web")
}

// generatorNameEvidence is tier-0 evidence for a software field naming a
// generator (DESIGN.md counts generator metadata, EXIF Software included,
// as deterministic), with a lower weight than a structural fingerprint.
func generatorNameEvidence(signal, loc, v string) (Evidence, bool) {
	name, ok := generatorName(v)
	if !ok {
		return Evidence{}, false
	}
	return Evidence{Signal: signal, Class: ClassAIGenerated, Weight: 3, Tier: TierDeterministic,
		Locator: loc, Excerpt: excerpt(v + " (" + name + ")")}, true
}

// cameraEvidence is weak human-capture evidence from a camera Make and
// Model. Both must be short plain text; anyone can type them, so the
// weight is small and the tier is 1: it never outvotes a tier-0 AI claim.
func cameraEvidence(signal, loc, mk, model string) (Evidence, bool) {
	mk, model = strings.TrimSpace(mk), strings.TrimSpace(model)
	if mk == "" || model == "" || len(mk) > 64 || len(model) > 64 {
		return Evidence{}, false
	}
	for _, s := range []string{mk, model} {
		for _, r := range s {
			if r < 0x20 || r == '{' || r == '}' || r == 0xFFFD {
				return Evidence{}, false
			}
		}
		if _, ok := generatorName(s); ok {
			return Evidence{}, false
		}
	}
	return Evidence{Signal: signal, Class: ClassHumanCapture, Weight: -1, Tier: TierWeakClaim,
		Locator: loc, Excerpt: excerpt(mk + " " + model)}, true
}
