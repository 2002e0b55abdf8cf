"""Signing and identity: the Signer and IdentityProvider interfaces, the HMAC and Ed25519 JWS
signers and their keys, the JWT on-behalf-of token validator (JWKS from a file or a URL), and
AWS credentials assumed with a workflow's token.

Modules here may import ``errors`` and ``settings`` only; choosing which signer or provider a
worker uses (which needs the plugin registry) lives in ``runtime``.
"""
