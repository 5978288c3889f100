//! The skills extension (SEP-2640, `io.modelcontextprotocol/skills`): one skill,
//! `skill://greeting-helper/SKILL.md`, with a `references/` subdirectory, served through
//! `skills/list`, `skills/get`, `resources/read` and `resources/directory/read`.

use rmcp::ErrorData as McpError;
use rmcp::model::{
    DIRECTORY_MIME_TYPE, GetSkillResult, ListResourcesResult, ListSkillsResult, Resource, Skill,
    SkillFrontmatter, SkillResource, SkillResources,
};
use serde_json::{Value, json};

const NAME: &str = "greeting-helper";
const DESCRIPTION: &str = "Greets people in the language they write in.";
const ROOT: &str = "skill://greeting-helper";
const SKILL_MD: &str = "skill://greeting-helper/SKILL.md";
const REFERENCES: &str = "skill://greeting-helper/references";
const PHRASES: &str = "skill://greeting-helper/references/phrases.md";

const SKILL_MD_TEXT: &str = "---\nname: greeting-helper\n\
description: Greets people in the language they write in.\n---\n\n\
# Greeting helper\n\nAnswer a greeting in the language it was written in; \
common phrases are in references/phrases.md.\n";
const PHRASES_TEXT: &str = "# Phrases\n\n- English: Hello\n- French: Bonjour\n- Spanish: Hola\n";

/// The skill files as listed by `resources/list`.
pub fn resources() -> Vec<Value> {
    vec![
        json!({"uri": SKILL_MD, "name": NAME, "description": DESCRIPTION,
               "mimeType": "text/markdown"}),
        json!({"uri": PHRASES, "name": "phrases.md", "description": "Greetings by language",
               "mimeType": "text/markdown"}),
    ]
}

/// The contents of a skill file, for `resources/read`.
pub fn read(uri: &str) -> Option<Value> {
    let text = match uri {
        SKILL_MD => SKILL_MD_TEXT,
        PHRASES => PHRASES_TEXT,
        _ => return None,
    };
    Some(json!({"uri": uri, "mimeType": "text/markdown", "text": text}))
}

pub fn list() -> ListSkillsResult {
    ListSkillsResult::with_all_items(vec![skill()])
}

pub fn get(uri: &str) -> Result<GetSkillResult, McpError> {
    if uri != SKILL_MD {
        return Err(McpError::invalid_params(
            format!("no skill is served at {uri}"),
            Some(json!({"uri": uri})),
        ));
    }
    Ok(GetSkillResult::new(skill()))
}

/// The direct children of a skill directory; `-32602` for anything that is not one.
pub fn read_directory(uri: &str) -> Result<ListResourcesResult, McpError> {
    let children = match uri {
        ROOT => vec![
            Resource::new(SKILL_MD, NAME)
                .with_description(DESCRIPTION)
                .with_mime_type("text/markdown"),
            Resource::new(REFERENCES, "references").with_mime_type(DIRECTORY_MIME_TYPE),
        ],
        REFERENCES => vec![Resource::new(PHRASES, "phrases.md").with_mime_type("text/markdown")],
        _ => {
            return Err(McpError::invalid_params(
                format!("{uri} is not a directory"),
                Some(json!({"uri": uri})),
            ));
        }
    };
    Ok(ListResourcesResult::with_all_items(children))
}

fn skill() -> Skill {
    let files = vec![
        SkillResource::from_bytes(SKILL_MD, SKILL_MD_TEXT.as_bytes()),
        SkillResource::from_bytes(PHRASES, PHRASES_TEXT.as_bytes()),
    ];
    Skill::new(
        SKILL_MD,
        SkillFrontmatter::new(NAME, DESCRIPTION),
        SkillResources::Files(files),
    )
}
