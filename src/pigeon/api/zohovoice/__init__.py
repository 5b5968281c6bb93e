"""The Zoho Voice SMS API (``/rest/json/v1|v2/sms/...``) and Zoho's token endpoint
(``/oauth/v2/token``): a thin dialect over the same services as Zoom Connect's."""
