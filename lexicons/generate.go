package lexicons

//go:generate go run ../internal/tools/indigocopy -root ..
