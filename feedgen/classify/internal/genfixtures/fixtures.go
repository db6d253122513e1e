package main

import (
	"encoding/binary"
	"encoding/json"
)

// Prompts and values are invented for the fixtures.
const (
	a1111Text = "a lighthouse on a cliff at dusk, oil painting, dramatic sky\n" +
		"Negative prompt: blurry, lowres\n" +
		"Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 6.5, Seed: 1234567890, Size: 512x512, " +
		"Model hash: 0123abcd, Model: fixtureModel_v1, Lora hashes: \"a: 1f2e, b: 3d4c\", Version: v1.9.0"
	a1111JA = "夕暮れの灯台、油絵\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x512, Model: fixtureModel_v1"
)

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func comfyPromptJSON() string {
	return mustJSON(map[string]any{
		"3": map[string]any{"class_type": "KSampler", "inputs": map[string]any{"seed": 7, "steps": 20, "cfg": 8, "sampler_name": "euler", "model": []any{"4", 0}}},
		"4": map[string]any{"class_type": "CheckpointLoaderSimple", "inputs": map[string]any{"ckpt_name": "fixture.safetensors"}},
		"6": map[string]any{"class_type": "CLIPTextEncode", "inputs": map[string]any{"text": "a red fox in snow", "clip": []any{"4", 1}}},
	})
}

func comfyWorkflowJSON() string {
	return mustJSON(map[string]any{
		"last_node_id": 6, "version": 0.4,
		"nodes": []any{
			map[string]any{"id": 3, "type": "KSampler", "pos": []any{100, 100}},
			map[string]any{"id": 4, "type": "CheckpointLoaderSimple", "pos": []any{0, 0}},
		},
		"links": []any{},
	})
}

func xmpDST(code string) string {
	return xmpPacket(`Iptc4xmpExt:DigitalSourceType="`+dstURI+code+`"`, "")
}

func cameraTIFF(bo byteOrder, extra ...tiffEntry) []byte {
	ifd0 := append([]tiffEntry{ascii(0x010F, "Canon"), ascii(0x0110, "Canon EOS R6"), ascii(0x0131, "Adobe Lightroom Classic 13.0")}, extra...)
	return buildTIFF(bo, ifd0, []tiffEntry{{0x9000, 7, []byte("0232")}})
}

func fixtures() ([]item, error) {
	png1 := func(seed uint8, cs ...pngChunk) func() ([]byte, error) {
		return func() ([]byte, error) { return buildPNG(seed, cs...) }
	}
	jpg := func(seed uint8, segs ...jpegSeg) func() ([]byte, error) {
		return func() ([]byte, error) { return buildJPEG(seed, segs...) }
	}
	webp := func(seed uint8, cs ...riffChunk) func() ([]byte, error) {
		return func() ([]byte, error) { return buildWebP(seed, cs...), nil }
	}
	var be, le byteOrder = binary.BigEndian, binary.LittleEndian

	trainedStore := c2paStore(manifest{
		label:      "urn:c2pa:00000000-0000-4000-8000-00000000a001",
		claim:      claimV2("Fixture Image Generator", "1.0"),
		assertions: []assertion{actionsV2("c2pa.created", "trainedAlgorithmicMedia", "Fixture Diffusion 2"), hashData()},
	})
	// Big enough to need several APP11 segments at a small chunk size.
	multiSeg := app11JUMBF(0x0211, trainedStore, 160)
	truncated := append(append([]jpegSeg{}, multiSeg[:1]...), multiSeg[2:]...)

	compositeStore := c2paStore(manifest{
		label:      "urn:uuid:00000000-0000-4000-8000-00000000a002",
		claimLabel: "c2pa.claim",
		claim:      map[string]any{"claim_generator": "Fixture Editor/3.1 c2pa-rs/0.33.0", "dc:format": "image/jpeg"},
		assertions: []assertion{{label: "c2pa.actions", cbor: map[string]any{"actions": []any{
			map[string]any{"action": "c2pa.opened"},
			map[string]any{"action": "c2pa.edited", "digitalSourceType": dstURI + "compositeWithTrainedAlgorithmicMedia", "softwareAgent": "Fixture Editor 3.1"},
		}}}},
	})
	captureStore := c2paStore(manifest{
		label:      "urn:c2pa:00000000-0000-4000-8000-00000000a003",
		claim:      claimV2("Fixture Camera Firmware", "2.0"),
		assertions: []assertion{actionsV2("c2pa.created", "digitalCapture", "Fixture Camera")},
	})
	noActionsStore := c2paStore(manifest{
		label:      "urn:c2pa:00000000-0000-4000-8000-00000000a004",
		claim:      claimV2("Adobe Photoshop", "25.0"),
		assertions: []assertion{hashData()},
	})
	jsonStore := c2paStore(manifest{
		label:      "urn:uuid:00000000-0000-4000-8000-00000000a005",
		claimLabel: "c2pa.claim",
		claim:      map[string]any{"claim_generator": "Fixture Generator/0.9"},
		assertions: []assertion{{label: "c2pa.actions", json: map[string]any{"actions": []any{
			map[string]any{"action": "c2pa.created", "digitalSourceType": dstURI + "trainedAlgorithmicMedia"},
		}}}},
	})
	ingredientStore := c2paStore(
		manifest{
			label:      "urn:c2pa:00000000-0000-4000-8000-00000000a006",
			claim:      claimV2("Fixture Image Generator", "1.0"),
			assertions: []assertion{actionsV2("c2pa.created", "trainedAlgorithmicMedia", "")},
		},
		manifest{
			label:      "urn:c2pa:00000000-0000-4000-8000-00000000a007",
			claim:      claimV2("Fixture Editor", "3.1"),
			assertions: []assertion{actionsV2("c2pa.edited", "", "Fixture Editor")},
		},
	)
	chatgptStore := c2paStore(manifest{
		label:      "urn:c2pa:00000000-0000-4000-8000-00000000a008",
		claim:      claimV2("ChatGPT", "1.0"),
		assertions: []assertion{hashData()},
	})

	extPacket := `<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">` +
		`<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" xmlns:dc="http://purl.org/dc/elements/1.1/">` +
		`<dc:description><rdf:Alt><rdf:li xml:lang="x-default">extended part padding padding padding padding</rdf:li></rdf:Alt></dc:description>` +
		`<Iptc4xmpExt:DigitalSourceType>` + dstURI + `trainedAlgorithmicMedia</Iptc4xmpExt:DigitalSourceType>` +
		`</rdf:Description></rdf:RDF></x:xmpmeta>`
	const guid = "0123456789ABCDEF0123456789ABCDEF"
	extSegs := append([]jpegSeg{app1XMP(xmpPacket(`xmpNote:HasExtendedXMP="`+guid+`"`, ""))}, app1ExtXMP(guid, extPacket, 200)...)

	items := []item{
		// ---- PNG: generator text chunks ----
		{Name: "png-a1111-text", File: "png-a1111-text.png", Expect: "ai_generated", Signals: []string{"gen.a1111"},
			Note: "A1111 parameters in tEXt", data: png1(10, tEXt("parameters", a1111Text))},
		{Name: "png-a1111-itxt-compressed", File: "png-a1111-itxt-compressed.png", Expect: "ai_generated", Signals: []string{"gen.a1111"},
			Note: "non-Latin prompt in compressed iTXt, after IDAT", data: png1(20, func() pngChunk { c := iTXt("parameters", a1111JA, true); c.late = true; return c }())},
		{Name: "png-comfyui", File: "png-comfyui.png", Expect: "ai_generated", Signals: []string{"gen.comfyui"},
			Note: "ComfyUI prompt + workflow tEXt", data: png1(30, tEXt("prompt", comfyPromptJSON()), tEXt("workflow", comfyWorkflowJSON()))},
		{Name: "png-novelai", File: "png-novelai.png", Expect: "ai_generated", Signals: []string{"gen.novelai", "png.software"},
			Note: "NovelAI Software + Comment JSON", data: png1(40, tEXt("Software", "NovelAI"), tEXt("Description", "a castle in clouds"),
				tEXt("Comment", mustJSON(map[string]any{"steps": 28, "sampler": "k_euler_ancestral", "seed": 31337, "scale": 11, "uc": "lowres"})))},
		{Name: "png-invokeai", File: "png-invokeai.png", Expect: "ai_generated", Signals: []string{"gen.invokeai"},
			Note: "InvokeAI v3 invokeai_metadata in iTXt", data: png1(50, iTXt("invokeai_metadata", mustJSON(map[string]any{
				"generation_mode": "txt2img", "positive_prompt": "a teapot", "seed": 99, "steps": 30, "cfg_scale": 7.5, "scheduler": "euler"}), false))},
		{Name: "png-invokeai-v2-ztxt", File: "png-invokeai-v2-ztxt.png", Expect: "ai_generated", Signals: []string{"gen.invokeai"},
			Note: "InvokeAI v2 sd-metadata in zTXt", data: png1(60, zTXt("sd-metadata", mustJSON(map[string]any{
				"model": "stable diffusion", "app_id": "fixture", "image": map[string]any{"prompt": []any{map[string]any{"prompt": "a teapot", "weight": 1}}, "steps": 50, "cfg_scale": 7.5, "seed": 5, "sampler": "k_lms"}})))},
		{Name: "png-easydiffusion", File: "png-easydiffusion.png", Expect: "ai_generated", Signals: []string{"gen.easydiffusion"},
			Note: "Easy Diffusion one chunk per setting", data: png1(65, tEXt("prompt", "a teapot"), tEXt("negative_prompt", "blurry"),
				tEXt("num_inference_steps", "25"), tEXt("guidance_scale", "7.5"), tEXt("sampler_name", "euler_a"), tEXt("seed", "4242"))},
		{Name: "png-swarmui", File: "png-swarmui.png", Expect: "ai_generated", Signals: []string{"gen.swarmui"},
			Note: "SwarmUI JSON parameters", data: png1(68, tEXt("parameters", mustJSON(map[string]any{"sui_image_params": map[string]any{"prompt": "a teapot", "steps": 20, "seed": 1}})))},
		{Name: "png-midjourney", File: "png-midjourney.png", Expect: "ai_generated", Signals: []string{"gen.midjourney", "xmp.digitalSourceType"},
			Note: "Midjourney Description + XMP with iptcExt prefix", data: png1(70,
				tEXt("Description", "a koi pond, ukiyo-e style --ar 3:2 --v 6 Job ID: 0b5c2a4e-1d3f-4a6b-9c8d-7e6f5a4b3c2d"),
				iTXt("XML:com.adobe.xmp", `<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:iptcExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" iptcExt:DigitalSourceType="`+dstURI+`trainedAlgorithmicMedia" iptcExt:DigImageGUID="0b5c2a4e"/></rdf:RDF></x:xmpmeta>`, false))},
		// ---- PNG: C2PA, XMP, EXIF ----
		{Name: "png-c2pa-trained", File: "png-c2pa-trained.png", Expect: "ai_generated", Signals: []string{"c2pa.digitalSourceType"},
			Note: "caBX after IHDR, actions.v2 trainedAlgorithmicMedia", data: png1(80, pngChunk{typ: "caBX", data: trainedStore})},
		{Name: "png-c2pa-json-actions", File: "png-c2pa-json-actions.png", Expect: "ai_generated", Signals: []string{"c2pa.digitalSourceType"},
			Note: "old-style JSON actions assertion", data: png1(85, pngChunk{typ: "caBX", data: jsonStore})},
		{Name: "png-xmp-composite", File: "png-xmp-composite.png", Expect: "ai_assisted", Signals: []string{"xmp.digitalSourceType"},
			Note: "iTXt XMP, compositeWithTrainedAlgorithmicMedia attribute", data: png1(90, iTXt("XML:com.adobe.xmp", xmpDST("compositeWithTrainedAlgorithmicMedia"), false))},
		{Name: "png-exif-camera", File: "png-exif-camera.png", Expect: "human", Signals: []string{"exif.camera"},
			Note: "eXIf chunk, LE TIFF, camera Make/Model", data: png1(100, pngChunk{typ: "eXIf", data: cameraTIFF(le)})},
		{Name: "png-a1111-fake-camera", File: "png-a1111-fake-camera.png", Expect: "ai_generated", Signals: []string{"gen.a1111", "exif.camera"},
			Note: "generator metadata beats a typed-in camera", data: png1(105, tEXt("parameters", a1111Text), pngChunk{typ: "eXIf", data: cameraTIFF(be)})},
		{Name: "png-stripped", File: "png-stripped.png", Expect: "unknown", Note: "no metadata is not human evidence", data: png1(110)},
		// ---- PNG decoys and damage ----
		{Name: "png-decoy-parameters", File: "png-decoy-parameters.png", Expect: "unknown",
			Note: "parameters chunk with unrelated text", data: png1(120, tEXt("parameters", "levels adjusted\nSteps: three, Sampler: none, Seed: n/a"))},
		{Name: "png-decoy-comment-not-ai", File: "png-decoy-comment-not-ai.png", Expect: "unknown",
			Note: "Comment says not AI, names Stable Diffusion", data: png1(130, tEXt("Software", "Krita"), tEXt("Comment", "Not AI! Hand-painted in Krita, no Stable Diffusion or Midjourney involved."))},
		{Name: "png-decoy-prompt-text", File: "png-decoy-prompt-text.png", Expect: "unknown",
			Note: "a 'prompt' chunk that is not a ComfyUI graph", data: png1(140, tEXt("prompt", "Inktober prompt #12: a fox"), tEXt("workflow", `{"nodes": "pencil, ink, scan"}`))},
		{Name: "png-bad-crc", File: "png-bad-crc.png", Expect: "unknown",
			Note: "A1111 chunk with a corrupt CRC is dropped, as libpng drops it", data: png1(150, pngChunk{typ: "tEXt", data: []byte("parameters\x00" + a1111Text), crc: func(c uint32) uint32 { return c ^ 1 }})},
		// ---- JPEG ----
		{Name: "jpeg-c2pa-trained-multiseg", File: "jpeg-c2pa-trained-multiseg.jpg", Expect: "ai_generated", Signals: []string{"c2pa.digitalSourceType"},
			Note: "APP11 JUMBF split over several segments", data: jpg(10, multiSeg...)},
		{Name: "jpeg-c2pa-composite", File: "jpeg-c2pa-composite.jpg", Expect: "ai_assisted", Signals: []string{"c2pa.digitalSourceType"},
			Note: "c2pa.actions v1 composite, claim v1", data: jpg(20, app11JUMBF(0x0211, compositeStore, 60000)...)},
		{Name: "jpeg-c2pa-capture", File: "jpeg-c2pa-capture.jpg", Expect: "unknown",
			Note: "C2PA digitalCapture in an unsigned manifest: invalid, so not counted", data: jpg(30, app11JUMBF(0x0211, captureStore, 60000)...)},
		{Name: "jpeg-c2pa-no-actions", File: "jpeg-c2pa-no-actions.jpg", Expect: "unknown",
			Note: "manifest from an editor, no actions", data: jpg(35, app11JUMBF(0x0211, noActionsStore, 60000)...)},
		{Name: "jpeg-c2pa-truncated", File: "jpeg-c2pa-truncated.jpg", Expect: "unknown",
			Note: "APP11 segment Z=2 missing: store cut short", data: jpg(40, truncated...)},
		{Name: "jpeg-c2pa-claim-generator", File: "jpeg-c2pa-claim-generator.jpg", Expect: "ai_generated", Signals: []string{"c2pa.claimGenerator"},
			Note: "manifest by a generator product, no actions", data: jpg(45, app11JUMBF(0x0211, chatgptStore, 60000)...)},
		{Name: "jpeg-xmp-trained-element", File: "jpeg-xmp-trained-element.jpg", Expect: "ai_generated", Signals: []string{"xmp.digitalSourceType"},
			Note: "DigitalSourceType as element text", data: jpg(50, app1XMP(xmpPacket("", "   <Iptc4xmpExt:DigitalSourceType>"+dstURI+"trainedAlgorithmicMedia</Iptc4xmpExt:DigitalSourceType>\n")))},
		{Name: "jpeg-xmp-trained-resource", File: "jpeg-xmp-trained-resource.jpg", Expect: "ai_generated", Signals: []string{"xmp.digitalSourceType"},
			Note: "rdf:resource form with a different prefix", data: jpg(55, app1XMP(`<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" xmlns:ext="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"><ext:DigitalSourceType rdf:resource="https://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"/></rdf:Description></rdf:RDF></x:xmpmeta>`))},
		{Name: "jpeg-xmp-extended", File: "jpeg-xmp-extended.jpg", Expect: "ai_generated", Signals: []string{"xmp.digitalSourceType"},
			Note: "DigitalSourceType in ExtendedXMP over two APP1 segments", data: jpg(58, extSegs...)},
		{Name: "jpeg-xmp-capture", File: "jpeg-xmp-capture.jpg", Expect: "human", Signals: []string{"xmp.digitalSourceType"},
			Note: "XMP digitalCapture", data: jpg(60, app1XMP(xmpDST("digitalCapture")))},
		{Name: "jpeg-xmp-algorithmic", File: "jpeg-xmp-algorithmic.jpg", Expect: "unknown",
			Note: "algorithmicMedia is not generative AI", data: jpg(65, app1XMP(xmpDST("algorithmicMedia")))},
		{Name: "jpeg-xmp-aisystem", File: "jpeg-xmp-aisystem.jpg", Expect: "ai_assisted", Signals: []string{"xmp.iptc.aiSystem"},
			Note: "IPTC 2025.1 AISystemUsed", data: jpg(68, app1XMP(xmpPacket(`Iptc4xmpExt:AISystemUsed="Fixture Diffusion"`, "")))},
		{Name: "jpeg-exif-a1111", File: "jpeg-exif-a1111.jpg", Expect: "ai_generated", Signals: []string{"gen.a1111"},
			Note: "A1111 UserComment, UNICODE UTF-16BE, BE TIFF", data: jpg(70, app1Exif(buildTIFF(be, nil, []tiffEntry{userCommentUnicode(a1111Text, be)})))},
		{Name: "jpeg-exif-software", File: "jpeg-exif-software.jpg", Expect: "ai_generated", Signals: []string{"exif.software"},
			Note: "EXIF Software names a generator", data: jpg(75, app1Exif(buildTIFF(le, []tiffEntry{ascii(0x0131, "Midjourney v6")}, nil)))},
		{Name: "jpeg-exif-camera", File: "jpeg-exif-camera.jpg", Expect: "human", Signals: []string{"exif.camera"},
			Note: "BE TIFF camera Make/Model", data: jpg(80, app1Exif(cameraTIFF(be)))},
		{Name: "jpeg-decoy-camera-description", File: "jpeg-decoy-camera-description.jpg", Expect: "human", Signals: []string{"exif.camera"},
			Note: "camera photo whose ImageDescription mentions Stable Diffusion", data: jpg(85, app1Exif(cameraTIFF(le,
				ascii(0x010E, "Street scene. Friends said it looks like Stable Diffusion art, but it was shot on a Canon."))))},
		{Name: "jpeg-decoy-xmp-description", File: "jpeg-decoy-xmp-description.jpg", Expect: "unknown",
			Note: "dc:description mentions AI, CreatorTool is an editor", data: jpg(90, app1XMP(xmpPacket(`xmp:CreatorTool="Adobe Photoshop 25.0 (Windows)"`,
				`   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">Made with Stable Diffusion? No: watercolour on paper.</rdf:li></rdf:Alt></dc:description>`+"\n")))},
		{Name: "jpeg-com-fooocus", File: "jpeg-com-fooocus.jpg", Expect: "ai_generated", Signals: []string{"gen.sdjson"},
			Note: "Fooocus-style JSON in a COM segment", data: jpg(95, jpegSeg{0xFE, []byte(mustJSON(map[string]any{
				"prompt": "a teapot", "negative_prompt": "", "steps": 30, "sampler": "dpmpp_2m_sde_gpu", "seed": "12345", "guidance_scale": 4}))})},
		{Name: "jpeg-stripped", File: "jpeg-stripped.jpg", Expect: "unknown", data: jpg(100)},
		// ---- WebP ----
		{Name: "webp-c2pa-trained", File: "webp-c2pa-trained.webp", Expect: "ai_generated", Signals: []string{"c2pa.digitalSourceType"},
			Note: "C2PA chunk last in RIFF", data: webp(10, riffChunk{"C2PA", trainedStore})},
		{Name: "webp-c2pa-ingredient", File: "webp-c2pa-ingredient.webp", Expect: "ai_assisted", Signals: []string{"c2pa.ingredient.digitalSourceType"},
			Note: "AI ingredient manifest, active manifest is an edit", data: webp(15, riffChunk{"C2PA", ingredientStore})},
		{Name: "webp-xmp-trained", File: "webp-xmp-trained.webp", Expect: "ai_generated", Signals: []string{"xmp.digitalSourceType"},
			Note: "XMP chunk + VP8X flag", data: webp(20, riffChunk{"XMP ", []byte(xmpDST("trainedAlgorithmicMedia"))})},
		{Name: "webp-exif-a1111", File: "webp-exif-a1111.webp", Expect: "ai_generated", Signals: []string{"gen.a1111"},
			Note: "EXIF chunk with Exif\\0\\0 prefix, LE TIFF, UTF-16LE UserComment", data: webp(30, riffChunk{"EXIF", append([]byte("Exif\x00\x00"), buildTIFF(le, nil, []tiffEntry{userCommentUnicode(a1111Text, le)})...)})},
		{Name: "webp-comfyui-exif", File: "webp-comfyui-exif.webp", Expect: "ai_generated", Signals: []string{"gen.comfyui"},
			Note: "ComfyUI animated-WebP style Make/Model", data: webp(40, riffChunk{"EXIF", buildTIFF(le, []tiffEntry{
				ascii(0x010F, "workflow:"+comfyWorkflowJSON()), ascii(0x0110, "prompt:"+comfyPromptJSON())}, nil)})},
		{Name: "webp-exif-camera", File: "webp-exif-camera.webp", Expect: "human", Signals: []string{"exif.camera"},
			Note: "raw TIFF EXIF chunk", data: webp(50, riffChunk{"EXIF", cameraTIFF(le)})},
		{Name: "webp-decoy-software-prose", File: "webp-decoy-software-prose.webp", Expect: "unknown",
			Note: "Software field with prose, ASCII UserComment mentioning AI", data: webp(55, riffChunk{"EXIF", buildTIFF(be,
				[]tiffEntry{ascii(0x0131, "Stable Diffusion is not used here")}, []tiffEntry{userCommentASCII("shot handheld; not AI")})})},
		{Name: "webp-stripped", File: "webp-stripped.webp", Expect: "unknown", data: webp(60)},
	}
	items = append(items, postItems()...)
	return items, nil
}

// postItems are record-level items; some reuse media files above.
func postItems() []item {
	return []item{
		{Name: "post-selflabel-ai-generated", Post: &post{Text: "sunset study", SelfLabels: []string{"ai-generated"}}, Expect: "ai_generated", Signals: []string{"selflabel.post"}},
		{Name: "post-selflabel-ai-modified", Post: &post{Text: "touched up", SelfLabels: []string{"ai-modified"}}, Expect: "ai_assisted", Signals: []string{"selflabel.post"}},
		{Name: "post-selflabel-other", Post: &post{Text: "beach day", SelfLabels: []string{"nudity"}}, Expect: "unknown", Note: "non-AI self-label"},
		{Name: "post-author-ai-agent", Post: &post{Text: "Here is today's summary of the news.", AuthorLabels: []string{"ai-agent"}}, Expect: "ai_generated", Signals: []string{"selflabel.profile"}},
		{Name: "post-author-bot", Post: &post{Text: "M4.2 earthquake, 12 km NE of Sampletown", AuthorLabels: []string{"bot"}}, Expect: "unknown", Signals: []string{"selflabel.profile.bot"}, Note: "automation is not AI content"},
		{Name: "post-hashtags-only", Post: &post{Text: "new piece #aiart #midjourney", Tags: []string{"stablediffusion"}}, Expect: "unknown", Signals: []string{"text.hashtag"}, Note: "heuristics never set a label"},
		{Name: "post-llm-boilerplate", Post: &post{Text: "As an AI language model, I cannot browse the web."}, Expect: "unknown", Signals: []string{"text.llm_boilerplate"}},
		{Name: "post-noai-hashtag", Post: &post{Text: "ink sketch #NoAI #HumanArt"}, Expect: "unknown", Signals: []string{"text.hashtag"}},
		{Name: "post-plain", Post: &post{Text: "made soup today"}, Expect: "unknown"},
		{Name: "post-camera-aiart-caption", File: "jpeg-exif-camera.jpg", Post: &post{Text: "Not #aiart: shot this on my Canon, made with midjourney? no!"}, Expect: "human", Signals: []string{"exif.camera"}, Note: "caption decoy on a camera photo"},
		{Name: "post-capture-aiart-tags", File: "jpeg-xmp-capture.jpg", Post: &post{Tags: []string{"aiart", "generativeai"}, Text: "[AI] thoughts?"}, Expect: "human", Signals: []string{"xmp.digitalSourceType", "text.hashtag"}, Note: "heuristics cannot outvote tier 0"},
		{Name: "post-selflabel-on-camera", File: "jpeg-exif-camera.jpg", Post: &post{SelfLabels: []string{"ai-generated"}}, Expect: "ai_generated", Signals: []string{"selflabel.post", "exif.camera"}},
		{Name: "post-alt-midjourney", File: "png-stripped.png", Post: &post{Alt: "made with midjourney"}, Expect: "unknown", Signals: []string{"text.marker"}},
	}
}
