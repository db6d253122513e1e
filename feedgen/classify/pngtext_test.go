package classify

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func fieldSignals(fields ...TextField) []string {
	var s []string
	for _, e := range textFieldEvidence(fields) {
		s = append(s, e.Signal)
	}
	return s
}

func TestGeneratorFingerprints(t *testing.T) {
	a1111 := "a cat\nNegative prompt: dog\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512"
	tests := []struct {
		name   string
		fields []TextField
		want   []string
	}{
		{"a1111", []TextField{{Key: "parameters", Value: a1111}}, []string{"gen.a1111"}},
		{"a1111 quoted commas", []TextField{{Key: "parameters", Value: "x\nSteps: 5, Sampler: DDIM, Seed: 2, Lora hashes: \"a: 1, b: 2\""}}, []string{"gen.a1111"}},
		{"a1111 usercomment", []TextField{{Key: "UserComment", Value: a1111}}, []string{"gen.a1111"}},
		{"a1111 no prompt", []TextField{{Key: "parameters", Value: "Steps: 20, Sampler: Euler, Seed: 3"}}, []string{"gen.a1111"}},
		{"steps not a number", []TextField{{Key: "parameters", Value: "x\nSteps: many, Sampler: Euler, Seed: 3"}}, nil},
		{"no sampler", []TextField{{Key: "parameters", Value: "x\nSteps: 20, CFG scale: 7, Seed: 3"}}, nil},
		{"steps mid-line", []TextField{{Key: "parameters", Value: "see Steps: 20, Sampler: Euler, Seed: 3"}}, nil},
		{"unbalanced quote", []TextField{{Key: "parameters", Value: "Steps: 20, Sampler: \"Euler, Seed: 3"}}, nil},
		{"a1111 text under an unrelated key", []TextField{{Key: "Title", Value: a1111}}, nil},
		{"comfy prompt", []TextField{{Key: "prompt", Value: `{"1":{"class_type":"KSampler","inputs":{}}}`}}, []string{"gen.comfyui"}},
		{"comfy prompt without inputs", []TextField{{Key: "prompt", Value: `{"1":{"class_type":"KSampler"}}`}}, nil},
		{"comfy prompt plain text", []TextField{{Key: "prompt", Value: "draw a class_type"}}, nil},
		{"comfy workflow", []TextField{{Key: "workflow", Value: `{"nodes":[{"id":1,"type":"KSampler"}]}`}}, []string{"gen.comfyui"}},
		{"comfy workflow no ids", []TextField{{Key: "workflow", Value: `{"nodes":[{"type":"KSampler"}]}`}}, nil},
		{"comfy exif make", []TextField{{Key: "Make", Value: `workflow:{"nodes":[{"id":1,"type":"A"}]}`}}, []string{"gen.comfyui"}},
		{"comfy exif broken", []TextField{{Key: "Model", Value: `prompt:{"1":`}}, nil},
		{"novelai", []TextField{{Key: "Software", Value: "NovelAI"}, {Key: "Comment", Value: `{"steps":28,"sampler":"k_euler","seed":1,"scale":11}`}}, []string{"png.software", "gen.novelai"}},
		{"novelai software only", []TextField{{Key: "Software", Value: "NovelAI"}, {Key: "Comment", Value: "nice"}}, []string{"png.software"}},
		{"comment not AI", []TextField{{Key: "Comment", Value: "Not AI; no Stable Diffusion used"}}, nil},
		{"comment json without seed", []TextField{{Key: "Comment", Value: `{"steps":3,"sampler":"x"}`}}, nil},
		{"midjourney", []TextField{{Key: "Description", Value: "a fox --v 6 Job ID: 0b5c2a4e-1d3f-4a6b-9c8d-7e6f5a4b3c2d"}}, []string{"gen.midjourney"}},
		{"midjourney bad uuid", []TextField{{Key: "Description", Value: "a fox Job ID: 12345"}}, nil},
		{"midjourney wrong key", []TextField{{Key: "Comment", Value: "Job ID: 0b5c2a4e-1d3f-4a6b-9c8d-7e6f5a4b3c2d"}}, nil},
		{"invokeai", []TextField{{Key: "invokeai_metadata", Value: `{"seed":1,"steps":2,"positive_prompt":"x"}`}}, []string{"gen.invokeai"}},
		{"invokeai thin", []TextField{{Key: "invokeai_metadata", Value: `{"seed":1}`}}, nil},
		{"sd-metadata", []TextField{{Key: "sd-metadata", Value: `{"image":{"steps":50,"cfg_scale":7.5,"seed":5}}`}}, []string{"gen.invokeai"}},
		{"dream", []TextField{{Key: "Dream", Value: `"a fox" -s 50 -S 42 -W 512 -H 512 -C 7.5 -A k_lms`}}, []string{"gen.invokeai"}},
		{"dream prose", []TextField{{Key: "Dream", Value: `"I had a dream" - said someone`}}, nil},
		{"swarm", []TextField{{Key: "parameters", Value: `{"sui_image_params":{"seed":1}}`}}, []string{"gen.swarmui"}},
		{"easy diffusion", []TextField{{Key: "num_inference_steps", Value: "25"}, {Key: "sampler_name", Value: "euler"}, {Key: "seed", Value: "1"}}, []string{"gen.easydiffusion"}},
		{"easy diffusion thin", []TextField{{Key: "num_inference_steps", Value: "25"}}, nil},
		{"fooocus json", []TextField{{Key: "Comment", Value: `{"prompt":"x","steps":30,"sampler":"dpmpp","seed":"12"}`}}, []string{"gen.sdjson"}},
		{"empty", []TextField{{Key: "parameters", Value: "  "}}, nil},
		{"software editor", []TextField{{Key: "Software", Value: "GIMP 2.10"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, fieldSignals(tt.fields...))
		})
	}
}

func TestFingerprintLimits(t *testing.T) {
	// Huge and deeply nested values must not blow up.
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	assert.Empty(t, fieldSignals(TextField{Key: "prompt", Value: "{\"a\":" + deep + "}"}))
	long := strings.Repeat("x, ", 200000)
	assert.Empty(t, fieldSignals(TextField{Key: "parameters", Value: "Steps: 1, " + long}))
	assert.Empty(t, fieldSignals(TextField{Key: "parameters", Value: strings.Repeat("\n", 100000)}))
}
