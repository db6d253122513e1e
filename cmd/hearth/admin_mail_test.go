package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/hearth-social/hearth/pds"
	"github.com/hearth-social/hearth/pds/mail"
	"github.com/stretchr/testify/require"
)

func TestAdminMail(t *testing.T) {
	dir := t.TempDir()
	ob := &mail.Outbox{Path: pds.OutboxPath(dir)}
	for _, m := range []mail.Message{
		{To: "a@example.com", Subject: "Your PLC operation token", Body: "token AAAAA-11111", DID: "did:plc:a", Purpose: mail.PurposePLCOperation, Token: "AAAAA-11111"},
		{To: "b@example.com", Subject: "Your PLC operation token", Body: "token BBBBB-22222", DID: "did:plc:b", Purpose: mail.PurposePLCOperation, Token: "BBBBB-22222"},
		{To: "a@example.com", Subject: "Your account deletion token", Body: "token AAAAA-33333", DID: "did:plc:a", Purpose: mail.PurposeDeleteAccount, Token: "AAAAA-33333"},
		{To: "b@example.com", Subject: "Your sign-in code", Body: "code CCCCC-44444", DID: "did:plc:b", Purpose: mail.PurposeSignIn, Token: "CCCCC-44444"},
	} {
		require.NoError(t, ob.Send(context.Background(), m))
	}
	run := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := newApp(&out, &errOut).RunContext(context.Background(), append([]string{"hearth", "admin", "mail", "--data-dir", dir}, args...))
		return out.String(), err
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--did", "did:plc:a", "--purpose", "plc_operation", "--token"}, "AAAAA-11111"},
		{[]string{"--did", "did:plc:a", "--token"}, "AAAAA-33333"},
		{[]string{"--purpose", "plc_operation", "--token"}, "BBBBB-22222"},
		{[]string{"--did", "did:plc:b", "--purpose", "sign_in", "--token"}, "CCCCC-44444"},
	} {
		out, err := run(tc.args...)
		require.NoError(t, err, tc.args)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		require.Equal(t, tc.want, lines[len(lines)-1], tc.args)
	}
	out, err := run("--did", "did:plc:a")
	require.NoError(t, err)
	require.Contains(t, out, "Subject: Your PLC operation token")
	require.Contains(t, out, "Subject: Your account deletion token")
	require.NotContains(t, out, "BBBBB-22222")
	_, err = run("--did", "did:plc:nobody", "--token")
	require.ErrorContains(t, err, "no matching token")
	_, err = run("--purpose", "spam")
	require.ErrorContains(t, err, "--purpose")
}

func TestSMTPURLErrorHidesPassword(t *testing.T) {
	var out, errOut bytes.Buffer
	err := newApp(&out, &errOut).RunContext(context.Background(), []string{"hearth", "serve", "--data-dir", t.TempDir(),
		"--listen", "127.0.0.1:0", "--plc-listen", "127.0.0.1:0", "--no-feedgen", "--smtp-url", "ftp://user:hunter2@mail.example.com"})
	require.ErrorContains(t, err, "--smtp-url (HEARTH_SMTP_URL)")
	require.NotContains(t, err.Error(), "hunter2")
}
