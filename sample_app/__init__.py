"""A multi-tenant commerce system to find faults in: gateway, catalog, orders, payments."""
