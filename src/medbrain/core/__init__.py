"""Shared model used by every engine and adapter: findings, errors, settings, i18n."""
