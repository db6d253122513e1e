package mail

import "time"

// TokenMail is the subject and plain-text body of the mail carrying token for purpose
// to the account handle: what the token does, how long it works, what to do if the
// reader did not ask for it, and which server sent it.
func TokenMail(purpose, handle, token, server string, ttl time.Duration) (subject, body string) {
	subject, what, notYou := tokenText(purpose)
	body = "Hello " + handle + ",\n\n" + what + "\n\n    " + token + "\n\nIt works once, for " + ttl.String() +
		". " + notYou + "\n\n-- Hearth, the PDS at " + server + "\n"
	return subject, body
}

const ignoreIt = "If you did not ask for it, ignore this mail; nothing changes without it."

func tokenText(purpose string) (subject, what, notYou string) {
	switch purpose {
	case PurposePLCOperation:
		return "Your PLC operation token", "Someone (hopefully you) asked to change your account's identity (DID document), for example to move the account to another server. To sign the change, use this token:", ignoreIt
	case PurposeDeleteAccount:
		return "Your account deletion token", "Someone (hopefully you) asked to delete your account. To delete it, with everything in it, use this token:", ignoreIt
	case PurposeConfirmEmail:
		return "Confirm your email address", "Someone (hopefully you) asked to confirm that this address is your account's. To confirm it, use this token:",
			"If you have no account there, someone gave your address by mistake: ignore this mail."
	case PurposeUpdateEmail:
		return "Your email change token", "Someone (hopefully you) asked to change your account's email address. To allow the change, use this token:",
			"If it was not you, do not use it, and change your password: someone else may be signed in to your account."
	case PurposeResetPassword:
		return "Reset your password", "Someone (hopefully you) asked to reset your account's password. To choose a new one, use this token:",
			"If you did not ask for it, ignore this mail; your password stays as it is."
	case PurposeSignIn:
		return "Your sign-in code", "Someone (hopefully you) signed in to your account with its password. To finish signing in, use this code:",
			"If it was not you, someone knows your password: reset it. Without this code they cannot sign in."
	}
	return "Your token", "Use this token:", ignoreIt
}
