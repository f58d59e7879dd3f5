"""SQL LIKE / ILIKE lookups for MLflow's search grammar (the pattern is the user's, as-is)."""

from django.db.models import CharField, Lookup, TextField

_GLOB_LITERAL = str.maketrans({"*": "[*]", "?": "[?]", "[": "[[]"})


def like_to_glob(pattern: str) -> str:
    """SQLite's LIKE ignores case for ASCII (and the pragma that changes it would break
    Django's own icontains), so a case-sensitive LIKE becomes GLOB there."""
    return pattern.translate(_GLOB_LITERAL).replace("%", "*").replace("_", "?")


class Like(Lookup):
    lookup_name = "like"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        if connection.vendor == "sqlite":
            rhs_params = [like_to_glob(p) if isinstance(p, str) else p for p in rhs_params]
            return f"{lhs} GLOB {rhs}", [*lhs_params, *rhs_params]
        return f"{lhs} LIKE {rhs}", [*lhs_params, *rhs_params]


class ILike(Lookup):
    lookup_name = "ilike"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        if connection.vendor == "postgresql":
            return f"{lhs} ILIKE {rhs}", [*lhs_params, *rhs_params]
        return f"LOWER({lhs}) LIKE LOWER({rhs})", [*lhs_params, *rhs_params]


def register_lookups() -> None:
    for field in (CharField, TextField):
        field.register_lookup(Like)
        field.register_lookup(ILike)
