"""The portal: server-rendered pages for people (sign-in, invitations, the inbox)."""
