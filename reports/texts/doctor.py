"""What ``leadtrail doctor`` says about each check: what it found and what to fix (plain text, for the
terminal; never a secret's value)."""

from __future__ import annotations

SUMMARY = "Итог: ошибок {failed}, предупреждений {warned}."

NEW_TOKEN = 'python3 -c "import secrets; print(secrets.token_urlsafe(32))"'
NEW_KEY = 'python3 -c "import secrets; print(secrets.token_hex(32))"'

CONFIG_DEFAULTS = "файл не задан: значения по умолчанию и переменные LEADTRAIL_… (задайте --config FILE)"
CONFIG_READ = "файл {path} прочитан, все ключи верны"
CONFIG_FILE = "файл {path}"
CONFIG_ENV = "переменные LEADTRAIL_…"
CONFIG_FAILED = "{where} не загружается: {reason}. Исправьте и запустите doctor снова"

PERMISSIONS_NO_SECRETS = "в файле нет секретов (токены берутся из окружения)"
PERMISSIONS_OPEN = (
    "файл с секретами ({keys}) доступен не только владельцу (права {mode:04o}): chmod 600 {path}"
)
PERMISSIONS_OK = "секреты в файле, права {mode:04o}: читает только владелец"

TOKEN_MISSING = (
    "не задан: бот выключен, работает только HTTP-приём. Токен даёт @BotFather; "
    "задайте LEADTRAIL_TELEGRAM__TOKEN или [telegram] token"
)
TOKEN_OK = "задан, формат верный"

OWNERS_NONE = (
    "пуст: никто не получит отчёты и оповещения, бот откажет всем. "
    "Впишите свой Telegram user id (его покажет @userinfobot) в [telegram] owners"
)
OWNERS_EMAIL_ONLY = "пуст: отчёты уйдут только на e-mail ({count} адр.)"
OWNERS_NO_BOT = "владельцев {count}, но без telegram.token бот им не ответит"
OWNERS_OK = "владельцев: {count}"

INGEST_NONE = "пуст: POST /v1/events отклонит всё (401). Создайте токен: " + NEW_TOKEN
INGEST_SHORT = "короче {chars} символов, их можно подобрать: {keys}. Замените на " + NEW_TOKEN
INGEST_OK = "токенов: {count}, все не короче {chars} символов"

HASH_SECRET_OK = "задан"
KEEP_KEY = (
    "храните его вместе с резервными копиями базы: с другим ключом те же люди получат другие псевдонимы"
)
KEY_FILE_OK = "не задан: ключ обезличивания в файле {path} (вне базы, читает только владелец); " + KEEP_KEY
KEY_FILE_LATER = (
    "не задан: ключ обезличивания будет создан при первом обезличивании в {path} (права 0600); " + KEEP_KEY
)
KEY_FILE_OPEN = "ключ обезличивания {path} доступен не только владельцу (права {mode:04o}): chmod 600 {path}"
KEY_FILE_CANNOT_CREATE = (
    "ключ обезличивания не создать в {path}: {reason}. Задайте retention.key_file "
    "или ключ " + NEW_KEY + " в LEADTRAIL_RETENTION__HASH_SECRET"
)

ZONE_UNKNOWN = "неизвестный часовой пояс {zone!r}: укажите, например, Europe/Moscow"
ZONE_OK = "{zone}, там сейчас {time}"

NO_FOLDER_ON_PATH = "нет ни одной существующей папки на пути"
NOT_A_FOLDER = "{folder} — файл, а не папка"
CANNOT_MAKE_FOLDER = "нельзя создать папку в {folder}"
CANNOT_WRITE_FOLDER = "нет права записи в папку {folder}"

SQLITE_IN_MEMORY = "база в памяти: всё пропадёт при остановке. Укажите файл"
SQLITE_NOT_A_FILE = "{path} существует, но это не файл: укажите путь к файлу базы"
SQLITE_CANNOT_CREATE = "файл базы {path} не создать: {reason}. Укажите другой путь"
SQLITE_OK = "папка файла базы {folder} доступна для записи"

PATH_OK = "{path}: запись возможна"
PATH_FAILED = "{path}: запись невозможна ({reason}). Исправьте права или путь"

DATABASE_NO_FILE = "файла {path} ещё нет: `leadtrail run` создаст его и схему при первом запуске"
DATABASE_UNREACHABLE = "{url} недоступна ({error}: {reason}). Проверьте адрес, пароль, сервер"
DATABASE_NEWER = "схема ревизии {current} новее этой версии LeadTrail (последняя {head}): обновите LeadTrail"
DATABASE_EMPTY = "база доступна, но пуста: `leadtrail run` создаст схему при запуске"
DATABASE_OLD = (
    "схема устарела (ревизия {current}, нужна {head}): `leadtrail run` обновит её при запуске; "
    "сначала сделайте резервную копию"
)
DATABASE_OK = "доступна, схема актуальна (ревизия {head})"

BOT_API_SKIPPED = "не проверен: telegram.token не задан"
BOT_API_REFUSED = "Bot API не принял токен (401): возьмите действующий у @BotFather"
BOT_API_UNREACHABLE = "{server} недоступен ({error}): проверьте сеть и адрес"
BOT_API_ERROR = "{server} ответил ошибкой: {message}"
BOT_API_OK = "{server} отвечает, бот @{username}"

MODEL_CALLS_NONE = "вызовов модели за {days} дн. нет"
MODEL_CALLS_PRICED = "все вызовы модели за {days} дн. оценены ({calls})"
MODEL_CALLS_UNPRICED = (
    "без цены за {days} дн.: {models}. Их токены посчитаны, но в «Стоимость ИИ» они не входят: "
    "добавьте модели в [[ai.prices]] (цена действует для новых вызовов)"
)
UNPRICED_MODEL = "{model} ({calls} выз.)"
UNPRICED_KNOWN = "{model} ({calls} выз.; цена в [[ai.prices]] есть — вызовы без токенов или до её since)"
UNATTRIBUTED_NONE = "вызовы модели за {days} дн. привязаны к клиентам"
UNATTRIBUTED_SOME = (
    "вызовов модели без клиента за {days} дн.: {count} (user id «unattributed»): их трасса не назвала "
    "пользователя за ai.trace_wait_seconds. Задайте user.id на span обработчика сообщения — родительском "
    "для вызова модели (или leadtrail.user_id на самом вызове)"
)
