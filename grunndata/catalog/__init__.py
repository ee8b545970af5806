"""The service catalogue of grunndata services (Endpoint/Organization, a feed and a page)."""
