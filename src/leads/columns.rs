//! CSV header → lead field mapping: our columns and the aliases CRMs export,
//! matched case-insensitively with spaces, dashes and dots read as underscores.

/// A lead field a CSV column can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Uuid,
    Phone,
    Whatsapp,
    Name,
    FirstName,
    LastName,
    Email,
    Partner,
    Status,
    State,
    Timezone,
    ConsentAt,
    ConsentSource,
}

impl Field {
    /// The name used in error rows.
    pub fn name(self) -> &'static str {
        match self {
            Field::Uuid => "lead_uuid",
            Field::Phone => "number",
            Field::Whatsapp => "whatsapp_number",
            Field::Name => "name",
            Field::FirstName => "first_name",
            Field::LastName => "last_name",
            Field::Email => "email",
            Field::Partner => "partner",
            Field::Status => "call_status",
            Field::State => "state",
            Field::Timezone => "timezone",
            Field::ConsentAt => "consent_at",
            Field::ConsentSource => "consent_source",
        }
    }
}

const ALIASES: &[(Field, &[&str])] = &[
    (Field::Uuid, &["lead_uuid", "uuid", "lead_id"]),
    (
        Field::Phone,
        &[
            "number",
            "phone",
            "phone_number",
            "phonenumber",
            "mobile",
            "mobile_number",
            "mobile_phone",
            "cell",
            "cell_phone",
            "telephone",
            "tel",
            "contact_number",
        ],
    ),
    (Field::Whatsapp, &["whatsapp_number", "whatsapp", "whatsapp_phone"]),
    (Field::Name, &["name", "full_name", "fullname", "contact_name", "lead_name"]),
    (Field::FirstName, &["first_name", "firstname", "given_name"]),
    (Field::LastName, &["last_name", "lastname", "surname", "family_name"]),
    (Field::Email, &["email", "email_address", "e_mail", "mail"]),
    (Field::Partner, &["partner", "company", "company_name", "organization", "organisation", "business", "account"]),
    (Field::Status, &["call_status", "status", "lead_status"]),
    (Field::State, &["state", "province", "state_code"]),
    (Field::Timezone, &["timezone", "time_zone", "tz"]),
    (Field::ConsentAt, &["consent_at", "consent_date", "consent_time", "opt_in_date", "optin_date", "opted_in_at"]),
    (Field::ConsentSource, &["consent_source", "consent_method", "opt_in_source", "optin_source"]),
];

/// Column positions of each field found in `header` (first match wins).
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    positions: Vec<(Field, usize)>,
}

impl Mapping {
    pub fn from_header<'a>(header: impl IntoIterator<Item = &'a str>) -> Mapping {
        let mut positions: Vec<(Field, usize)> = Vec::new();
        for (idx, raw) in header.into_iter().enumerate() {
            let key = normalise(raw);
            let found = ALIASES.iter().find(|(_, names)| names.contains(&key.as_str())).map(|(f, _)| *f);
            if let Some(field) = found.filter(|f| !positions.iter().any(|(g, _)| g == f)) {
                positions.push((field, idx));
            }
        }
        Mapping { positions }
    }

    pub fn position(&self, field: Field) -> Option<usize> {
        self.positions.iter().find(|(f, _)| *f == field).map(|(_, idx)| *idx)
    }

    /// The accepted names for the phone column, for the "no phone column" error.
    pub fn phone_aliases() -> &'static [&'static str] {
        ALIASES[1].1
    }
}

fn normalise(header: &str) -> String {
    header
        .trim_start_matches('\u{feff}')
        .trim()
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '-' || c == '.' { '_' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_our_columns_and_crm_aliases() {
        let ours = Mapping::from_header("lead_uuid,number,whatsapp_number,name,email,partner,call_status".split(','));
        assert_eq!(ours.position(Field::Phone), Some(1));
        assert_eq!(ours.position(Field::Status), Some(6));
        let crm =
            Mapping::from_header("\u{feff}First Name,Last Name,Phone Number,Company,State,Email,Time Zone".split(','));
        assert_eq!(crm.position(Field::FirstName), Some(0));
        assert_eq!(crm.position(Field::Phone), Some(2));
        assert_eq!(crm.position(Field::Partner), Some(3));
        assert_eq!(crm.position(Field::Timezone), Some(6));
        assert_eq!(crm.position(Field::Name), None);
    }

    #[test]
    fn first_matching_column_wins() {
        let m = Mapping::from_header(["Phone", "Mobile"]);
        assert_eq!(m.position(Field::Phone), Some(0));
    }
}
