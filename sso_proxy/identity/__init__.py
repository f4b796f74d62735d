"""Who the user is: the profile model, header values, signing, signing key files."""
