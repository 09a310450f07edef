"""The attribute words of every shipped language: what users type, and what replies show.

The schema's values are English keys (vocabulary.py); the diffusion prompt is built from
their English phrases whatever language the user wrote in, so "feliz saludando playa" and
"радость машет пляж" make the same sticker as "happy waving beach". For each language and
value: the *label* a reply shows (the first word) and the *synonyms* users type, including
the inflected forms people write ("enfadada", "на пляже", "в очках"). Spellings are matched
after the parser's normalisation (case folded, accents and diacritics dropped: "й" reads as
"и", "ё" as "е", "ñ" as "n"), so they are written here as people write them.

Every language's words are understood in every chat: a spelling never means two different
values (a test checks it, across languages too). Glue words of each language ("en la",
"на") carry no attribute and are not passed on as free text.
"""

from __future__ import annotations

from bot.schema.vocabulary import ALL_VOCABULARIES, Attribute

WordList = dict[Attribute, dict[str, tuple[str, ...]]]

SPANISH: WordList = {
    Attribute.EMOTION: {
        "happy": ("feliz", "contento", "contenta", "alegre", "sonriente", "sonriendo", "sonrisa", "felices"),
        "sad": ("triste", "llorando", "llorar", "tristeza", "deprimido", "deprimida", "apenado", "apenada"),
        "angry": (
            "enfadado",
            "enfadada",
            "enojado",
            "enojada",
            "furioso",
            "furiosa",
            "molesto",
            "molesta",
            "rabia",
            "cabreado",
            "cabreada",
        ),
        "surprised": ("sorprendido", "sorprendida", "asombrado", "asombrada", "sorpresa", "impactado", "impactada"),
        "sleepy": (
            "con sueño",
            "dormido",
            "dormida",
            "durmiendo",
            "cansado",
            "cansada",
            "somnoliento",
            "somnolienta",
            "sueño",
            "aburrido",
            "aburrida",
        ),
        "love": ("enamorado", "enamorada", "amor", "corazones", "enamorados", "cariñoso", "cariñosa"),
    },
    Attribute.ACTION: {
        "standing": ("de pie", "parado", "parada", "quieto", "quieta"),
        "waving": ("saludando", "saluda", "saludo", "hola", "adiós", "chao"),
        "jumping": ("saltando", "salta", "salto", "brincando"),
        "thumbs up": ("pulgar arriba", "pulgares arriba", "me gusta", "vale"),
        "sitting": ("sentado", "sentada", "sentados"),
        "dancing": ("bailando", "baila", "baile", "fiesta", "celebrando"),
    },
    Attribute.COMPOSITION: {
        "full body": ("cuerpo entero", "cuerpo completo"),
        "close up": ("primer plano", "cara", "retrato", "de cerca"),
        "upper body": ("medio cuerpo", "busto"),
        "wide shot": ("plano general", "plano abierto", "de lejos", "lejos", "pequeño", "pequeña"),
    },
    Attribute.STYLE: {
        "bold outline": ("contorno grueso", "contorno", "dibujo animado", "caricatura", "pegatina"),
        "flat": ("colores planos", "plano", "plana", "minimalista", "vectorial"),
        "shaded": ("sombreado", "sombreada", "brillante"),
        "pastel": ("pastel", "colores pastel", "colores suaves", "tierno", "tierna"),
    },
    Attribute.BACKGROUND: {
        "plain": ("fondo blanco", "liso", "sin fondo", "blanco", "transparente"),
        "beach": ("playa", "mar", "costa", "arena", "verano", "orilla"),
        "forest": ("bosque", "selva", "árboles", "parque", "naturaleza"),
        "night sky": ("cielo nocturno", "noche", "estrellas", "estrellado", "cielo estrellado", "luna", "espacio"),
        "city": ("ciudad", "calle", "centro", "edificios", "urbano"),
        "room": ("habitación", "cuarto", "dormitorio", "casa", "dentro", "interior", "salón"),
    },
    Attribute.APPEARANCE: {
        "hat": ("sombrero", "gorra", "gorro"),
        "glasses": ("gafas", "lentes", "anteojos", "gafas de sol"),
        "scarf": ("bufanda",),
        "crown": ("corona", "tiara", "rey", "reina"),
        "bow": ("lazo", "moño", "pajarita"),
    },
}

RUSSIAN: WordList = {
    Attribute.EMOTION: {
        "happy": (
            "радость",
            "радостный",
            "радостная",
            "радостное",
            "весёлый",
            "весёлая",
            "весёлое",
            "счастливый",
            "счастливая",
            "счастливое",
            "довольный",
            "довольная",
            "улыбается",
            "улыбка",
        ),
        "sad": (
            "грусть",
            "грустный",
            "грустная",
            "грустное",
            "печальный",
            "печальная",
            "плачет",
            "плачущий",
            "плачущая",
            "слёзы",
            "расстроенный",
            "расстроенная",
        ),
        "angry": ("злость", "злой", "злая", "злое", "сердитый", "сердитая", "злится", "в ярости", "ярость"),
        "surprised": ("удивление", "удивлённый", "удивлённая", "удивлён", "удивлена", "шок", "в шоке", "вау"),
        "sleepy": (
            "сонливость",
            "сонный",
            "сонная",
            "сонное",
            "спит",
            "спящий",
            "спящая",
            "уставший",
            "уставшая",
            "устал",
            "устала",
            "скука",
            "засыпает",
        ),
        "love": ("любовь", "влюблённый", "влюблённая", "влюблён", "влюблена", "сердечки", "сердца", "обожание"),
    },
    Attribute.ACTION: {
        "standing": ("стоит", "стоя", "стоять", "стоящий", "стоящая"),
        "waving": ("машет рукой", "машет", "машущий", "машущая", "привет", "пока", "здоровается"),
        "jumping": ("прыгает", "прыжок", "прыгать", "прыгающий", "прыгающая", "скачет", "подпрыгивает"),
        "thumbs up": ("палец вверх", "большой палец", "лайк", "класс", "окей", "ок"),
        "sitting": ("сидит", "сидя", "сидеть", "сидящий", "сидящая"),
        "dancing": ("танцует", "танец", "танцевать", "танцующий", "танцующая", "вечеринка", "праздник", "празднует"),
    },
    Attribute.COMPOSITION: {
        "full body": ("в полный рост", "полный рост", "во весь рост", "целиком"),
        "close up": ("крупный план", "крупно", "лицо", "портрет"),
        "upper body": ("по пояс", "поясной план", "бюст"),
        "wide shot": ("общий план", "издалека", "далеко", "вдали", "маленький", "маленькая"),
    },
    Attribute.STYLE: {
        "bold outline": ("жирный контур", "контур", "обводка", "мультяшный", "мультяшная", "мультик", "стикер"),
        "flat": ("плоский", "плоская", "плоские цвета", "минимализм", "вектор", "векторный"),
        "shaded": ("объёмный", "объёмная", "с тенями", "тени", "глянцевый", "3д"),
        "pastel": ("пастель", "пастельный", "пастельные цвета", "нежные цвета", "милый", "милая", "милота"),
    },
    Attribute.BACKGROUND: {
        "plain": ("белый фон", "без фона", "прозрачный", "белый", "чистый фон"),
        "beach": ("пляж", "пляже", "пляжа", "море", "моря", "у моря", "на море", "берег", "песок", "лето", "летом"),
        "forest": ("лес", "лесу", "лесе", "деревья", "джунгли", "парк", "парке", "природа", "природе"),
        "night sky": (
            "ночное небо",
            "ночном небе",
            "ночь",
            "ночью",
            "звёзды",
            "звёздное небо",
            "звёздном небе",
            "ночным небом",
            "звёздным небом",
            "звёздами",
            "луна",
            "космос",
            "космосе",
        ),
        "city": ("город", "городе", "улица", "улице", "центр города", "небоскрёбы", "здания"),
        "room": ("комната", "комнате", "дома", "дом", "доме", "спальня", "спальне", "внутри", "в помещении"),
    },
    Attribute.APPEARANCE: {
        "hat": ("шляпа", "в шляпе", "шляпе", "кепка", "в кепке", "шапка", "в шапке"),
        "glasses": ("очки", "в очках", "очках", "солнечные очки"),
        "scarf": ("шарф", "в шарфе", "шарфе"),
        "crown": ("корона", "в короне", "короне", "король", "королева", "диадема"),
        "bow": ("бант", "бантик", "с бантом", "бабочка"),
    },
}

WORDS: dict[str, WordList] = {"es": SPANISH, "ru": RUSSIAN}

FILLER_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset({"a", "an", "the", "on", "in", "at", "with", "and", "of", "my", "me", "is", "very", "please"}),
    "es": frozenset(
        {
            "el",
            "la",
            "los",
            "las",
            "un",
            "una",
            "en",
            "con",
            "de",
            "del",
            "y",
            "mi",
            "muy",
            "por",
            "favor",
            "a",
            "al",
            "que",
            "es",
            "esta",
            "fondo",
        }
    ),
    "ru": frozenset(
        {
            "в",
            "во",
            "на",
            "с",
            "со",
            "и",
            "у",
            "мой",
            "моя",
            "моё",
            "очень",
            "пожалуйста",
            "по",
            "под",
            "за",
            "к",
            "а",
            "фоне",
            "фон",
        }
    ),
}


def spellings(attribute: Attribute, key: str) -> tuple[str, ...]:
    """Every spelling of the value in every language (English first)."""
    english = next(v for v in ALL_VOCABULARIES if v.attribute is attribute)[key].spellings()
    return english + tuple(w for words in WORDS.values() for w in words[attribute].get(key, ()))


def label(attribute: Attribute, key: str, language: str) -> str:
    """How a reply in `language` names the value: its first word there, else the English key."""
    words = WORDS.get(language, {}).get(attribute, {}).get(key)
    return words[0] if words else key


def labels(attribute: Attribute, language: str) -> list[str]:
    """The attribute's values as `language` names them, in the schema's order (for /help)."""
    vocabulary = next(v for v in ALL_VOCABULARIES if v.attribute is attribute)
    return [label(attribute, value.key, language) for value in vocabulary.values]
